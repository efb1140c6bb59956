package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
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
	o, _, err := parseFlags(append([]string{"-quick"}, args...), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
		if r.spec.only != nil {
			// A wsbridge-only row: the floor has no shared mode.
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

// TestQuickWebsocketd checks the tool measures websocketd and bounds a
// measurement that deadlocks (64 KiB in flight) instead of hanging.
func TestQuickWebsocketd(t *testing.T) {
	if findWebsocketd("/usr/bin/websocketd") == "" {
		msg := fmt.Sprintf("%v: the comparison with websocketd is not tested", errNoWebsocketd)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("\n\n*** SKIPPED: " + msg + " ***\n\n")
	}
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
	}
	with := func(k key, rs ...result) map[key][]result {
		m := maps.Clone(good)
		m[k] = rs
		return m
	}
	for _, tc := range []struct {
		name    string
		results map[key][]result
		want    []string // status of each target, in order
	}{
		{"all met", good, []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS"}},
		{"websocketd stalls streaming", with(key{"stream64", vWebsocketd}, result{stalled: true, msgs: 9}),
			[]string{"PASS", "SKIP", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS"}},
		{"wsbridge fails one of three echo runs", with(key{"echo", vWsbridge}, result{p50: 100}, result{err: errStalled}, result{p50: 100}),
			[]string{"PASS", "PASS", "FAIL", "PASS", "PASS", "PASS", "PASS", "PASS"}},
		{"median decides", with(key{"idle", vWsbridge}, result{kibPer: 30}, result{kibPer: 7}, result{kibPer: 9}),
			[]string{"PASS", "PASS", "PASS", "PASS", "FAIL", "PASS", "PASS", "PASS"}},
		{"shared idle over 3 KiB", with(key{"idle-shared", vWsbridgeShared}, result{kibPer: 3.2}),
			[]string{"PASS", "PASS", "PASS", "PASS", "PASS", "FAIL", "PASS", "PASS"}},
		{"a write per client per message", with(key{"broadcast", vWsbridgeBroadcast}, result{writesPer: 1}),
			[]string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "FAIL", "PASS"}},
		{"broadcast not run", with(key{"broadcast", vWsbridgeBroadcast}),
			[]string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "SKIP", "PASS"}},
		{"websocketd not run", with(key{"connrate", vWebsocketd}),
			[]string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "SKIP"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bench{opts: options{idleConns: 1000, sharedConns: 10000, broadcastClients: 1000}, results: tc.results}
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
