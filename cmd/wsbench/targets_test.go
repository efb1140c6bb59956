package main

import (
	"maps"
	"strings"
	"testing"
)

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
