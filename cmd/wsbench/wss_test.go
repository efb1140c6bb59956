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
// beside them for the ratio: every wss row has a figure for websocketd,
// and for wsbridge unless it refused --ssl at start, which its cells,
// the notes and the target then say instead of failing the run.
func TestQuickWSS(t *testing.T) {
	needWebsocketd(t)
	// Built outside quickRun's minute: a cold build cache takes most of it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := buildWsbridge(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, table := quickRun(t, "-servers", "wsbridge,websocketd", "-only", "idle,wss-connrate,wss-stream64,wss-stream64k,wss-idle", "-wsbridge", bin)
	if el := time.Since(start); el > 40*time.Second {
		t.Errorf("took %v for at most ten 1 s measurements", el)
	}
	refused := rep.row("wss handshakes/s").cells[colWsbridge].text == "n/a (no --ssl)"
	if refused {
		t.Log("\n\n*** wsbridge refused --ssl at start (exit status 2): its half of the wss scenarios is not tested; websocketd's is ***\n\n")
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
		for _, col := range []string{colWebsocketd, colWsbridge} {
			c := r.cells[col]
			switch {
			case col == colWsbridge && refused:
				if c.text != "n/a (no --ssl)" {
					t.Errorf("%s, wsbridge refusing --ssl: %+v, want n/a (no --ssl)", r.spec.label, c)
				}
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
	if !strings.Contains(table, "websocketd wss: TLS 1.3, ") {
		t.Errorf("the notes do not say what TLS websocketd negotiated")
	}
	wantTarget := "PASS  wss idle memory ≤ 2× plain ws's"
	if refused {
		wantTarget = "SKIP  wss idle memory ≤ 2× plain ws's: wsbridge n/a (no --ssl)"
		if !strings.Contains(table, `wsbridge wss: refused --ssl at start (exit status 2: "wsbridge: --ssl`) {
			t.Errorf("the notes do not quote wsbridge's refusal of --ssl")
		}
	}
	found := false
	for _, line := range rep.targets {
		// A real measurement may miss the target; it must be judged.
		found = found || strings.HasPrefix(line, wantTarget) || !refused && strings.HasPrefix(line, "FAIL  wss idle memory ≤ 2×")
	}
	if !found {
		t.Errorf("targets lack %q:\n%s", wantTarget, strings.Join(rep.targets, "\n"))
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
		{"a bad certificate", &exitError{status: 2, log: "wsbridge: --sslcert=/x/cert.pem: no such file or directory\n"}, false},
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
