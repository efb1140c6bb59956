package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
