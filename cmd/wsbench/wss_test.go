package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestQuickWSS runs the wss scenarios for real, websocketd --ssl and
// wsbridge --ssl with the run's own certificate, and the plain idle one
// beside them for the ratio: every wss row has a figure for both, and the
// target is judged. A wsbridge_minimal build, which has no TLS, rides
// along as the -baseline: it refuses --ssl at start, and its wss cells,
// the notes and the run say so instead of failing.
func TestQuickWSS(t *testing.T) {
	needWebsocketd(t)
	// Built outside quickRun's minute: a cold build cache takes most of it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := buildWsbridge(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	minimal, err := buildWsbridgeFor(ctx, dir, "wsbridge-minimal", "GOFLAGS=-tags=wsbridge_minimal")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, table := quickRun(t, "-servers", "wsbridge,websocketd", "-only", "idle,wss-connrate,wss-stream64,wss-stream64k,wss-idle",
		"-wsbridge", bin, "-baseline", minimal)
	if el := time.Since(start); el > 45*time.Second {
		t.Errorf("took %v for at most eleven 1 s measurements", el)
	}
	rows := 0
	for _, r := range rep.rows {
		if !strings.HasPrefix(r.spec.label, "wss ") {
			continue
		}
		rows++
		if !strings.Contains(table, r.spec.label) {
			t.Errorf("table lacks row %q", r.spec.label)
		}
		if c := r.cells[colBaseline]; c.text != "n/a (no --ssl)" {
			t.Errorf("%s, the minimal build: %+v, want n/a (no --ssl)", r.spec.label, c)
		}
		for _, col := range []string{colWebsocketd, colWsbridge} {
			c := r.cells[col]
			switch {
			case c.ok && c.v > 0:
			case col == colWebsocketd && strings.HasPrefix(r.spec.label, "wss stream 64 KiB") && strings.HasPrefix(c.text, "stalled"):
				// Its one loop for both directions deadlocks on 64 KiB in flight, wss or not.
			case r.spec.ratioOf != nil && col == colWsbridge && c.ok:
				// wsbridge's plain idle figure is small: its ratio may be any number.
			default:
				t.Errorf("%s, %s: %+v, want a positive number", r.spec.label, col, c)
			}
		}
	}
	if rows != 9 {
		t.Errorf("%d wss rows, want 9", rows)
	}
	for _, want := range []string{
		"websocketd wss: TLS 1.3, ",
		"wsbridge wss: TLS 1.3, ",
		`baseline wss: refused --ssl at start (exit status 2: "wsbridge: --ssl: this wsbridge is a minimal build`,
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the notes do not say %q", want)
		}
	}
	judged := false
	for _, line := range rep.targets {
		// A real measurement may miss the target; it must be judged.
		judged = judged || strings.HasPrefix(line, "PASS  wss idle memory ≤ 2×") || strings.HasPrefix(line, "FAIL  wss idle memory ≤ 2×")
	}
	if !judged {
		t.Errorf("the wss idle target is not judged:\n%s", strings.Join(rep.targets, "\n"))
	}
}

// TestRefusesTLS checks that only a start refused for lack of --ssl, not
// any failure of a server started with it, leaves a column n/a.
func TestRefusesTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"wsbridge without --ssl", &exitError{status: 2, log: "wsbridge: --ssl, --sslkey: websocketd flag not supported by this version of wsbridge yet\n"}, true},
		{"a minimal build", &exitError{status: 2, log: "wsbridge: --ssl: this wsbridge is a minimal build (tag wsbridge_minimal), built without TLS (1.8 MB of a MIPS binary): use the full build\n"}, true},
		{"a bad certificate", &exitError{status: 2, log: "wsbridge: --sslcert=/x/cert.pem: no such file or directory\n"}, false},
		{"a bad key, the words elsewhere", &exitError{status: 2, log: "wsbridge: --sslkey=k.pem: not a key\nwsbridge: TLS not supported without a key\n"}, false},
		{"a port taken", &exitError{status: 1, log: "wsbridge: --ssl not supported on 127.0.0.1:8080: address in use\n"}, false},
		{"some other usage error", &exitError{status: 2, log: "wsbridge: --prot: not supported\n"}, false},
		{"not an exit", fmt.Errorf("wsbridge wss not listening after 10s"), false},
		{"wrapped", fmt.Errorf("starting: %w", &exitError{status: 2, log: "usage...\nwsbridge: --ssl: not supported\n"}), true},
	} {
		if msg, got := refusesTLS(tc.err); got != tc.want || got && !strings.Contains(msg, "--ssl") {
			t.Errorf("%s: refusesTLS = %q, %v; want %v", tc.name, msg, got, tc.want)
		}
	}
}
