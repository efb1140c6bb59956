package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the floor server too: the benchmark
// starts the floor by re-executing itself with -serve-floor.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve-floor" {
		main()
		return
	}
	os.Exit(m.Run())
}

// quickRun runs the tool in -quick mode with extra flags and returns the
// report and the printed table.
func quickRun(t *testing.T, args ...string) (*report, string) {
	t.Helper()
	return quickRunFor(t, time.Minute, args...)
}

// quickRunFor is quickRun with a time limit of d: the hand-over run builds
// wsbridge and its senders for arm first, which a cold build cache makes
// take most of a minute on its own.
func quickRunFor(t *testing.T, d time.Duration, args ...string) (*report, string) {
	t.Helper()
	o, _, err := parseFlags(append([]string{"-quick"}, args...), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	before := runtime.NumGoroutine()
	var out, progress bytes.Buffer
	rep, err := run(ctx, o, &out, &progress)
	t.Logf("progress:\n%s\ntable:\n%s", progress.String(), out.String())
	if err != nil {
		t.Fatal(err)
	}
	// Every load goroutine has an owner that waits for it.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
	}
	return rep, out.String()
}

// TestQuickFloor runs every scenario against the floor server and checks
// each row has a number: the tool works end to end.
func TestQuickFloor(t *testing.T) {
	rep, table := quickRun(t, "-servers", "floor")
	if len(rep.rows) == 0 {
		t.Fatal("no rows")
	}
	for _, r := range rep.rows {
		c := r.cells[colFloor]
		if variantFor(r.spec, colFloor) == nil {
			// A row the floor has no variant in: no shared mode, no wss.
			if c.ok || c.text != "n/a" {
				t.Errorf("%s: floor cell %+v, want n/a", r.spec.label, c)
			}
			continue
		}
		if !c.ok || !(c.v > 0) {
			t.Errorf("%s: floor cell %+v, want a positive number", r.spec.label, c)
		}
		if !strings.Contains(table, r.spec.label) {
			t.Errorf("table lacks row %q", r.spec.label)
		}
		if c.ok && !strings.Contains(table, num(c.v)) {
			t.Errorf("table lacks %s's value %s", r.spec.label, num(c.v))
		}
	}
}

// needWebsocketd skips the test loudly when websocketd is not installed,
// and fails it under CI=true.
func needWebsocketd(t *testing.T) {
	t.Helper()
	if findWebsocketd("/usr/bin/websocketd") == "" {
		msg := fmt.Sprintf("%v: the comparison with websocketd is not tested", errNoWebsocketd)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("\n\n*** SKIPPED: " + msg + " ***\n\n")
	}
}

// TestQuickWebsocketd checks the tool measures websocketd and bounds a
// measurement that deadlocks (64 KiB in flight) instead of hanging.
func TestQuickWebsocketd(t *testing.T) {
	needWebsocketd(t)
	start := time.Now()
	rep, _ := quickRun(t, "-servers", "websocketd", "-only", "echo,stream64k")
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v: a stalled measurement was not cut short", el)
	}
	if c := rep.row("echo 64 B, 4 conns").cells[colWebsocketd]; !c.ok || !(c.v > 0) {
		t.Errorf("websocketd echo: %+v, want a positive number", c)
	}
	c := rep.row("stream 64 KiB lines: MB/s").cells[colWebsocketd]
	if !c.ok && !strings.HasPrefix(c.text, "stalled") {
		t.Errorf("websocketd 64 KiB stream: %+v, want a number or stalled", c)
	}
}

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0.123, "0.12"}, {0.00051, "0.00051"}, {0, "0.00"}, {12.34, "12.3"}, {123.4, "123"}, {9999, "9999"}, {12345.6, "12,346"}, {1234567, "1,234,567"},
	} {
		if got := num(tc.v); got != tc.want {
			t.Errorf("num(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestHistogramPercentile(t *testing.T) {
	var h histogram
	for i := 1; i <= 100; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	if got := h.percentile(0.5); got != 50.5 {
		t.Errorf("p50 = %v, want 50.5", got)
	}
	if got := h.percentile(0.99); got != 99.5 {
		t.Errorf("p99 = %v, want 99.5", got)
	}
}

// tableRow returns the cells of the text table's row labelled label, by
// header title.
func tableRow(t *testing.T, table, label string) map[string]string {
	t.Helper()
	cols := regexp.MustCompile(`\S(?: ?\S)*`) // cells are at least two spaces apart
	var header []string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "measurement ") {
			header = cols.FindAllString(line, -1)
		}
		if header != nil && strings.HasPrefix(line, label+"  ") {
			cells := cols.FindAllString(line, -1)
			if len(cells) != len(header) {
				t.Fatalf("row %q has %d cells under %d titles:\n%s", label, len(cells), len(header), table)
			}
			out := map[string]string{}
			for i, h := range header {
				out[h] = cells[i]
			}
			return out
		}
	}
	t.Fatalf("no row %q in:\n%s", label, table)
	return nil
}

// TestQuickHandover runs the hand-over scenario for real: boa built from
// its tarball, its nph- CGI handing each connection to the daemon, and
// Debian's lighttpd, its CGI handing over its pipes, each with the Go and
// the C sender, and the arm columns where qemu-arm-static is.
func TestQuickHandover(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := findBoaTarball(root)
	if err == nil {
		// Built (or found in the cache) outside quickRun's minute.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		_, err = buildBoa(ctx, tarball, t.TempDir())
		cancel()
	}
	if err != nil {
		msg := fmt.Sprintf("boa cannot be built, the hand-over scenario is not tested: %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("\n\n*** SKIPPED: " + msg + " ***\n\n")
	}
	_, lighttpdErr := os.Stat(lighttpdBin)
	if lighttpdErr != nil && os.Getenv("CI") == "true" {
		t.Fatalf("the lighttpd columns cannot run: %v", lighttpdErr)
	}
	rep, table := quickRunFor(t, 5*time.Minute, "-only", "handover")
	if len(rep.handover) != 9 {
		t.Fatalf("%d hand-over rows, want 9", len(rep.handover))
	}
	rows := map[string]row{}
	for _, r := range rep.handover {
		rows[r.spec.label] = r
		relay := strings.Contains(r.spec.label, "(the relay)")
		for _, v := range handoverVariants {
			c := r.cells[v.name]
			switch {
			case c.ok && c.v > 0:
			case relay && v.sender == nil && c.text == "n/a":
				// No web server in front of the direct columns.
			case relay && v.sender != nil && v.sender.web == webBoa && c.ok:
				// boa gave the socket away: it may use no CPU at all.
			case strings.HasPrefix(v.name, "arm ") && strings.HasPrefix(c.text, "n/a ("):
				// No qemu-arm-static or no arm cross-compiler here: said so.
			case strings.HasPrefix(v.name, "lighttpd") && lighttpdErr != nil && c.text == "n/a (no lighttpd)":
			default:
				t.Errorf("%s, %s: %+v, want a positive number", r.spec.label, v.name, c)
			}
		}
	}
	for _, pair := range [][2]string{
		{"first echo of a new connection, one at a time: p50 µs", "first echo of a new connection, one at a time: p99 µs"},
		{"session, another connection: echo 64 B round trip p50 µs", "session: echo 64 B round trip p99 µs"},
	} {
		p50, p99 := rows[pair[0]], rows[pair[1]]
		for _, v := range handoverVariants {
			if a, b := p50.cells[v.name], p99.cells[v.name]; a.ok && b.ok && b.v < a.v {
				t.Errorf("%s: %s %v µs under its p50 %v µs", v.name, pair[1], b.v, a.v)
			}
		}
	}
	// lighttpd copies every byte of the session; boa is out of its path.
	relay := rows["session stream: web server CPU µs/msg (the relay)"]
	for _, lt := range []string{hoLtGo, hoLtC} {
		if c := relay.cells[lt]; c.ok {
			for _, boa := range []string{hoBoaGo, hoBoaC} {
				if b := relay.cells[boa]; b.ok && !(c.v > b.v) {
					t.Errorf("relaying the session, %s used %v µs/msg, not more than %s's %v", lt, c.v, boa, b.v)
				}
			}
		}
	}
	hoTable := strings.Replace(table, "\nhand-over ", "\nmeasurement ", 1)
	ratios := []string{"boa+Go/direct", "boa+C/direct"}
	if lighttpdErr == nil {
		ratios = append(ratios, "lighttpd+Go/direct", "lighttpd+C/direct")
	}
	for _, label := range []string{"connections/s (4 workers)", "session, one connection: stream 64 B, 64 in flight: msg/s"} {
		got := tableRow(t, hoTable, label)
		for _, col := range ratios {
			if !strings.HasSuffix(got[col], "×") {
				t.Errorf("%s: %s is %q, want a ratio", label, col, got[col])
			}
		}
	}
	if strings.Contains(table, "\nmeasurement ") {
		t.Errorf("-only handover prints the main table too:\n%s", table)
	}
	if !strings.Contains(table, "websocketd has no hand-over") {
		t.Errorf("the table's notes do not say websocketd has no hand-over")
	}
	if !strings.Contains(table, "lighttpd relays the pipes") {
		t.Errorf("the table's notes do not say lighttpd relays the session")
	}
}

// TestHandoverMissing checks a hand-over column whose programs are missing
// is left out of the plan and reads n/a with the reason, its ratio empty.
func TestHandoverMissing(t *testing.T) {
	bins := binaries{wsbridge: "/x/wsbridge", self: "/wsbench", dir: "/tmp/d"}
	bins.senderC = "/x/wsbridge-handover"
	var planned []string
	for _, sc := range (&bench{opts: options{only: []string{"handover"}}}).plan(bins) {
		for _, v := range sc.variants {
			planned = append(planned, v.name)
		}
	}
	if fmt.Sprint(planned) != "[direct]" {
		t.Errorf("without boa nor qemu the plan runs %v, want [direct]", planned)
	}
	b := &bench{opts: options{only: []string{"handover"}}, results: map[key][]result{
		{"handover", handoverVariants[0]}: {{rate: 300, p50: 900, p99: 2000}},
	}, handoverWhy: map[string]string{hoBoaGo: "no boa tarball", hoBoaC: "no boa tarball", hoLtGo: "no lighttpd", hoLtC: "no lighttpd",
		hoArmDirect: "no qemu-arm-static", hoArmBoaGo: "no qemu-arm-static", hoArmBoaC: "no qemu-arm-static"}}
	rep := b.report()
	var text bytes.Buffer
	rep.writeText(&text)
	hoTable := strings.Replace(text.String(), "\nhand-over ", "\nmeasurement ", 1)
	got := tableRow(t, hoTable, "connections/s (4 workers)")
	for col, want := range map[string]string{"direct": "300", "boa+C": "n/a (no boa tarball)", "lighttpd+Go": "n/a (no lighttpd)",
		"arm boa+Go": "n/a (no qemu-arm-static)", "boa+C/direct": "—", "lighttpd+C/direct": "—"} {
		if got[col] != want {
			t.Errorf("%s: %q, want %q\n%s", col, got[col], want, text.String())
		}
	}
	// A run whose session never ran says so; the direct column has no relay.
	got = tableRow(t, hoTable, "session stream: web server CPU µs/msg (the relay)")
	for col, want := range map[string]string{"direct": "n/a", "lighttpd+C": "n/a (no lighttpd)"} {
		if got[col] != want {
			t.Errorf("relay row, %s: %q, want %q", col, got[col], want)
		}
	}
	if got := tableRow(t, hoTable, "session stream: daemon CPU µs/msg")["direct"]; got != "error" {
		t.Errorf("session row of a run without a session: %q, want error", got)
	}
}
