package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
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

func TestTargets(t *testing.T) {
	good := map[key][]result{
		{"stream64", vWsbridge}:           {{rate: 600_000, cpuPerMsg: 1}},
		{"stream64", vWebsocketd}:         {{rate: 60_000, cpuPerMsg: 10}},
		{"echo", vWsbridge}:               {{p50: 110}},
		{"echo", vFloor}:                  {{p50: 100}},
		{"stream64k", vWsbridge}:          {{mbps: 400}},
		{"stream64k", vFloor}:             {{mbps: 600}},
		{"idle", vWsbridge}:               {{kibPer: 7}},
		{"connrate", vWsbridge}:           {{rate: 800}},
		{"connrate", vWebsocketd}:         {{rate: 500}},
		{"stream64k", vWebsocketd}:        {{stalled: true, msgs: 4}},
		{"idle-shared", vWsbridgeShared}:  {{kibPer: 2.5}},
		{"broadcast", vWsbridgeBroadcast}: {{writesPer: 0.004}},
		{"wss-idle", vWsbridgeWSS}:        {{kibPer: 10}}, // 1.43× the plain 7
	}
	with := func(k key, rs ...result) map[key][]result {
		m := maps.Clone(good)
		m[k] = rs
		return m
	}
	for _, tc := range []struct {
		name    string
		results map[key][]result
		want    []string            // status of each target, in order
		refused map[*variant]string // variants that refused their flags
	}{
		{name: "all met", results: good, want: []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS"}},
		{name: "websocketd stalls streaming", results: with(key{"stream64", vWebsocketd}, result{stalled: true, msgs: 9}),
			want: []string{"PASS", "SKIP", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS"}},
		{name: "wsbridge fails one of three echo runs", results: with(key{"echo", vWsbridge}, result{p50: 100}, result{err: errStalled}, result{p50: 100}),
			want: []string{"PASS", "PASS", "FAIL", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS"}},
		// The wss ratio is of the medians: 10 over 9.
		{name: "median decides", results: with(key{"idle", vWsbridge}, result{kibPer: 30}, result{kibPer: 7}, result{kibPer: 9}),
			want: []string{"PASS", "PASS", "PASS", "PASS", "FAIL", "PASS", "PASS", "PASS", "PASS"}},
		{name: "shared idle over 3 KiB", results: with(key{"idle-shared", vWsbridgeShared}, result{kibPer: 3.2}),
			want: []string{"PASS", "PASS", "PASS", "PASS", "PASS", "FAIL", "PASS", "PASS", "PASS"}},
		{name: "a write per client per message", results: with(key{"broadcast", vWsbridgeBroadcast}, result{writesPer: 1}),
			want: []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "FAIL", "PASS", "PASS"}},
		{name: "broadcast not run", results: with(key{"broadcast", vWsbridgeBroadcast}),
			want: []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "SKIP", "PASS", "PASS"}},
		{name: "websocketd not run", results: with(key{"connrate", vWebsocketd}),
			want: []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "SKIP", "PASS"}},
		{name: "wss idle over 2× plain", results: with(key{"wss-idle", vWsbridgeWSS}, result{kibPer: 14.5}),
			want: []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "FAIL"}},
		{name: "plain idle not run: no ratio", results: with(key{"idle", vWsbridge}),
			want: []string{"PASS", "PASS", "PASS", "PASS", "SKIP", "PASS", "PASS", "PASS", "SKIP"}},
		{name: "wss idle stalled", results: with(key{"wss-idle", vWsbridgeWSS}, result{stalled: true}),
			want: []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "FAIL"}},
		// A wsbridge without --ssl: not a failure of this one's.
		{name: "wsbridge refuses --ssl", results: with(key{"wss-idle", vWsbridgeWSS}), refused: map[*variant]string{vWsbridgeWSS: "no --ssl"},
			want: []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "SKIP"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bench{opts: options{idleConns: 1000, sharedConns: 10000, broadcastClients: 1000}, results: tc.results, refused: tc.refused}
			rep := b.report()
			if len(rep.targets) != len(tc.want) {
				t.Fatalf("%d targets, want %d:\n%s", len(rep.targets), len(tc.want), strings.Join(rep.targets, "\n"))
			}
			for i, line := range rep.targets {
				if !strings.HasPrefix(line, tc.want[i]) {
					t.Errorf("target %d: %q, want %s", i, line, tc.want[i])
				}
			}
		})
	}
}

// TestParseBaseline checks -baseline takes only an executable file, made
// absolute so that a bare name is not looked up on $PATH, and only with
// wsbridge measured to compare it with.
func TestParseBaseline(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "wsbridge-old")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		args    []string
		want    string // o.baseline
		wantErr string // "": no error
	}{
		{args: nil, want: ""},
		{args: []string{"-baseline", exe}, want: exe},
		{args: []string{"-baseline", "wsbridge-old"}, want: exe},
		{args: []string{"-baseline", "./wsbridge-old", "-servers", "wsbridge,floor"}, want: exe},
		{args: []string{"-baseline", filepath.Join(dir, "missing")}, wantErr: "no such file"},
		{args: []string{"-baseline", dir}, wantErr: "not an executable file"},
		{args: []string{"-baseline", plain}, wantErr: "not an executable file"},
		{args: []string{"-baseline", exe, "-servers", "floor,websocketd"}, wantErr: "-servers must include wsbridge"},
		{args: []string{"-baseline", exe, "-servers", "baseline"}, wantErr: "unknown name"},
	} {
		var usage bytes.Buffer
		o, _, err := parseFlags(tc.args, &usage)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.wantErr)
		case tc.wantErr == "" && o.baseline != tc.want:
			t.Errorf("%q: baseline %q, want %q", tc.args, o.baseline, tc.want)
		}
	}
	var usage bytes.Buffer
	if _, _, err := parseFlags([]string{"-h"}, &usage); !strings.Contains(usage.String(), "-baseline PATH") {
		t.Errorf("-h (%v) does not list -baseline PATH:\n%s", err, usage.String())
	}
}

// TestPlanBaseline checks the baseline runs in every scenario wsbridge
// runs in, the same configuration with the other binary, taking its turn
// in the same rounds; and that without -baseline the plan is as before.
func TestPlanBaseline(t *testing.T) {
	bins := binaries{wsbridge: "/new/wsbridge", baseline: "/old/wsbridge", websocketd: "/usr/bin/websocketd", self: "/wsbench"}
	names := func(plan []*scenario) map[string][]string {
		out := map[string][]string{}
		for _, sc := range plan {
			for _, v := range sc.variants {
				out[sc.name] = append(out[sc.name], v.name)
			}
		}
		return out
	}
	with := names((&bench{opts: options{baseline: bins.baseline}}).plan(bins))
	want := map[string][]string{
		"echo":        {"wsbridge", "baseline", "websocketd", "floor"},
		"stream64":    {"wsbridge", "baseline", "websocketd", "floor"},
		"stream64k":   {"wsbridge", "baseline", "websocketd", "floor", "wsbridge len32", "baseline len32"},
		"connrate":    {"wsbridge", "baseline", "websocketd", "floor"},
		"idle":        {"wsbridge", "baseline", "websocketd", "floor"},
		"idle-shared": {"wsbridge --shared", "baseline --shared"},
		"pinned":      {"wsbridge --shared", "baseline --shared"},
		"broadcast":   {"wsbridge --shared broadcast", "baseline --shared broadcast"},
		// No boa nor qemu in bins; no twin: the hand-over compares paths, not binaries.
		"handover":      {"direct"},
		"wss-connrate":  {"wsbridge wss", "baseline wss", "websocketd wss"},
		"wss-stream64":  {"wsbridge wss", "baseline wss", "websocketd wss"},
		"wss-stream64k": {"wsbridge wss", "baseline wss", "websocketd wss"},
		"wss-idle":      {"wsbridge wss", "baseline wss", "websocketd wss"},
	}
	if fmt.Sprint(with) != fmt.Sprint(want) {
		t.Errorf("plan with -baseline:\n%v\nwant\n%v", with, want)
	}
	for v, twin := range baselineTwins {
		got, orig := twin.argv(bins, 1234), v.argv(bins, 1234)
		if got[0] != bins.baseline || fmt.Sprint(got[1:]) != fmt.Sprint(orig[1:]) || twin.binary != v.binary || twin.tls != v.tls {
			t.Errorf("%s: baseline runs %q (binary %v, tls %v), want %q with %s's arguments %q (binary %v, tls %v)",
				v.name, got, twin.binary, twin.tls, bins.baseline, v.name, orig, v.binary, v.tls)
		}
	}
	only := names((&bench{opts: options{baseline: bins.baseline, servers: []string{"wsbridge"}}}).plan(bins))
	if got := fmt.Sprint(only["stream64k"]); got != "[wsbridge baseline wsbridge len32 baseline len32]" {
		t.Errorf("-servers wsbridge -baseline: stream64k runs %s", got)
	}
	bins.baseline = ""
	without := names((&bench{}).plan(bins))
	for sc, vs := range without {
		for _, name := range vs {
			if strings.HasPrefix(name, "baseline") {
				t.Errorf("without -baseline, %s runs %s", sc, name)
			}
		}
	}
	if got := fmt.Sprint(without["stream64k"]); got != "[wsbridge websocketd floor wsbridge len32]" {
		t.Errorf("without -baseline: stream64k runs %s", got)
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

// TestReportBaseline checks the baseline's column, the new/baseline ratio,
// the spread of the repeats and the verdict against it, in text and
// Markdown; and that a report without -baseline has none of them.
func TestReportBaseline(t *testing.T) {
	twin := baselineTwins[vWsbridge]
	results := map[key][]result{
		// 102 against 100, spreads 3.9% and 2%: within noise.
		{"echo", vWsbridge}: {{rate: 104, p50: 131, p99: 80}, {rate: 100, p50: 130, p99: 80}, {rate: 102, p50: 132, p99: 81}},
		// p50 1.30× of a lower-is-better row: worse; p99 0.80×: better.
		{"echo", twin}:   {{rate: 99, p50: 100, p99: 100}, {rate: 101, p50: 102, p99: 101}, {rate: 100, p50: 101, p99: 100}},
		{"echo", vFloor}: {{rate: 200, p50: 50, p99: 60}, {rate: 210, p50: 50, p99: 60}, {rate: 190, p50: 50, p99: 60}},
		// One repeat each: no spread to judge by.
		{"stream64", vWsbridge}: {{rate: 1000}},
		{"stream64", twin}:      {{rate: 900}},
		// The baseline stalled.
		{"connrate", vWsbridge}:                          {{rate: 800}, {rate: 820}},
		{"connrate", twin}:                               {{stalled: true, msgs: 3}, {rate: 810}},
		{"idle-shared", vWsbridgeShared}:                 {{kibPer: 2.5}, {kibPer: 2.5}},
		{"idle-shared", baselineTwins[vWsbridgeShared]}:  {{kibPer: 2.5}, {kibPer: 2.5}},
		{"stream64k", vWsbridgeLen32}:                    {{mbps: 400}, {mbps: 410}},
		{"stream64k", baselineTwins[vWsbridgeLen32]}:     {{mbps: 500}, {mbps: 505}},
		{"broadcast", baselineTwins[vWsbridgeBroadcast]}: {{writesPer: 0.004}},
	}
	opts := options{idleConns: 1000, sharedConns: 10000, broadcastClients: 1000, pinnedConns: 300, baseline: "/old/wsbridge"}
	rep := (&bench{opts: opts, results: results}).report()
	var text, md bytes.Buffer
	rep.writeText(&text)
	rep.writeMarkdown(&md)
	t.Logf("text:\n%s\nmarkdown:\n%s", text.String(), md.String())

	for _, tc := range []struct {
		label                      string
		wsbridge, baseline         string
		ratio, verdict, vsWsbridge string
	}{
		{"echo 64 B, 4 conns: msg/s", "102 (3.9%)", "100 (2.0%)", "1.02×", "within", "—"},
		{"echo 64 B: p50 round trip µs", "131 (1.5%)", "101 (2.0%)", "1.30×", "WORSE", "—"},
		{"echo 64 B: p99 round trip µs", "80.0 (1.2%)", "100 (1.0%)", "0.80×", "better", "—"},
		{"stream 64 B, 64 in flight x4: msg/s", "1000", "900", "1.11×", "1 run", "—"},
		{"connections/s (4 workers)", "810 (2.5%)", "stalled (3 msgs, 1/2 runs)", "—", "—", "—"},
		{"shared idle: server RSS KiB/conn at 10000 conns", "2.50 (0.0%)", "2.50 (0.0%)", "1.00×", "within", "—"},
		{"stream 64 KiB len32 binary: MB/s (info)", "405 (2.5%)", "502 (1.0%)", "0.81×", "WORSE", "—"},
		{"broadcast: write syscalls per client per message", "—", "0.004", "—", "—", "—"},
	} {
		got := tableRow(t, text.String(), tc.label)
		if got["wsbridge"] != tc.wsbridge || got["baseline"] != tc.baseline || got["wsbridge/baseline"] != tc.ratio ||
			got["vs noise"] != tc.verdict || got["wsbridge/websocketd"] != tc.vsWsbridge {
			t.Errorf("%s: %v\nwant wsbridge %q, baseline %q, wsbridge/baseline %q, vs noise %q, wsbridge/websocketd %q",
				tc.label, got, tc.wsbridge, tc.baseline, tc.ratio, tc.verdict, tc.vsWsbridge)
		}
		if c := rep.row(tc.label).cells[colWebsocketd]; c.text != "—" && c.text != "n/a" {
			t.Errorf("%s: websocketd cell %+v, want none", tc.label, c)
		}
	}
	for name, out := range map[string]string{"text": text.String(), "markdown": md.String()} {
		for _, want := range []string{
			"baseline: /old/wsbridge, measured wherever wsbridge is",
			"within noise when it differs from 1× by no more than the larger spread of the two binaries",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s report does not say %q", name, want)
			}
		}
	}
	if want := "| echo 64 B, 4 conns: msg/s | higher | 102 (3.9%) | 100 (2.0%) | — | 200 (10%) | 1.02× | within | — | 0.51× |"; !strings.Contains(md.String(), want) {
		t.Errorf("markdown lacks the row\n%s", want)
	}
	if want := "| measurement | better | wsbridge | baseline | websocketd | floor | wsbridge/baseline | vs noise | wsbridge/websocketd | wsbridge/floor |\n" +
		"| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"; !strings.Contains(md.String(), want) {
		t.Errorf("markdown lacks the header\n%s", want)
	}

	// Without -baseline: the columns and cells as they always were.
	opts.baseline = ""
	rep = (&bench{opts: opts, results: results}).report()
	text.Reset()
	md.Reset()
	rep.writeText(&text)
	rep.writeMarkdown(&md)
	if strings.Contains(text.String()+md.String(), "baseline") {
		t.Errorf("without -baseline the report mentions a baseline:\n%s\n%s", text.String(), md.String())
	}
	if got := fmt.Sprint(tableRow(t, text.String(), "echo 64 B, 4 conns: msg/s")); got != "map[better:higher floor:200 measurement:echo 64 B, 4 conns: msg/s websocketd:— wsbridge:102 wsbridge/floor:0.51× wsbridge/websocketd:—]" {
		t.Errorf("without -baseline the echo row is %s", got)
	}
	if want := "| measurement | better | wsbridge | websocketd | floor | wsbridge/websocketd | wsbridge/floor |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |"; !strings.Contains(md.String(), want) {
		t.Errorf("without -baseline the markdown header is not\n%s", want)
	}
}

// TestQuickBaseline measures one wsbridge binary against itself as the
// baseline for real: both columns get numbers from interleaved runs, and
// the ratio is judged against their spread.
func TestQuickBaseline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := buildWsbridge(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, table := quickRun(t, "-only", "echo", "-servers", "wsbridge", "-repeat", "2", "-wsbridge", bin, "-baseline", bin)
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v for four 1 s measurements", el)
	}
	r := rep.row("echo 64 B, 4 conns")
	for _, col := range []string{colWsbridge, colBaseline} {
		if c := r.cells[col]; !c.ok || !(c.v > 0) || c.runs != 2 {
			t.Errorf("%s echo: %+v, want a positive median of 2 runs", col, c)
		}
	}
	got := tableRow(t, table, r.spec.label)
	if !strings.HasSuffix(got["wsbridge/baseline"], "×") {
		t.Errorf("wsbridge/baseline is %q, want a ratio", got["wsbridge/baseline"])
	}
	if v := got["vs noise"]; v != "within" && v != "better" && v != "WORSE" {
		t.Errorf("vs noise is %q, want a verdict", v)
	}
	if !strings.HasSuffix(got["baseline"], "%)") {
		t.Errorf("baseline cell %q, want the median and its spread", got["baseline"])
	}
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
