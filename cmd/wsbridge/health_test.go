package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// needPython returns python3 once it can import module, which Debian's
// package pkg ships; like needTool, it skips the test loudly outside CI
// and fails it under CI=true.
func needPython(t testing.TB, module, pkg string) string {
	t.Helper()
	py := needTool(t, "/usr/bin/python3", "apt-get install python3")
	if out, err := exec.Command(py, "-c", "import "+module).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("MISSING TOOL python3 module %s (%s): install it with `apt-get install %s` (or `make test-deps`)", module, strings.TrimSpace(string(out)), pkg)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

// promScript parses the exposition on stdin with the Prometheus client
// library's own parser and prints every sample's value by
// name{label="value",...}, labels sorted; a family without HELP, or of a
// type wsbridge does not write, fails it.
const promScript = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    if not fam.documentation or fam.type not in ("counter", "gauge"):
        sys.exit("family %s: help %r, type %s" % (fam.name, fam.documentation, fam.type))
    for s in fam.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        out[s.name + "{" + labels + "}"] = s.value
print(json.dumps(out))
`

// promSamples scrapes url and parses the answer as a Prometheus server
// would.
func promSamples(t *testing.T, url string) map[string]float64 {
	t.Helper()
	py := needPython(t, "prometheus_client.parser", "python3-prometheus-client")
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET %s: %d, Content-Type %q; want 200 text/plain; version=0.0.4", url, resp.StatusCode, ct)
	}
	cmd := exec.Command(py, "-c", promScript)
	cmd.Stdin = strings.NewReader(string(body))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the Prometheus parser refused the metrics: %v %s\n%s", err, stderr.String(), body)
	}
	var m map[string]float64
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitSample waits until the sample key of the metrics at url is want.
func waitSample(t *testing.T, url, key string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := promSamples(t, url)
		got, ok := m[key]
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s = %v (present %v), want %v; all: %v", key, got, ok, want, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// healthStatus GETs path on addr the way HAProxy checks it (HTTP/1.0, no
// Host) and returns the status and body.
func healthStatus(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	resp, err := c.Request("GET "+path+" HTTP/1.0\r\n\r\n", "")
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestHealthDrainMetrics runs the daemon with a health check, a long
// drain and the metrics on a port of their own: SIGTERM turns the health
// check to 503 while sessions, old and new, are served and the metrics
// say so; a second SIGTERM still ends it at once.
func TestHealthDrainMetrics(t *testing.T) {
	t.Parallel()
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	murl := "http://" + maddr + "/metrics"
	b := startBridge(t, "--health", "--drain=1h", "--metrics-address="+maddr, childBin, "echo")
	if !b.Log.WaitFor("msg=metrics url="+murl, 10*time.Second) {
		t.Fatalf("no log line for the metrics at %s", murl)
	}
	if code, body := healthStatus(t, b.Addr, "/health"); code != 200 || body != "ok\n" {
		t.Errorf("/health: %d %q, want 200 ok", code, body)
	}
	// Not on the public port: --metrics-address put them elsewhere.
	if code, _ := healthStatus(t, b.Addr, "/metrics"); code == 200 {
		t.Errorf("/metrics on the public port: 200, want not served")
	}
	waitSample(t, murl, `wsbridge_connections_total{endpoint="*"}`, 0)

	old := wstest.MustDial(t, b.Addr, wstest.Options{})
	if err := old.WriteMessage(wstest.OpText, []byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	old.ExpectMessage(t, wstest.OpText, "hello")
	if code, _ := upgradeTo(t, b.Addr, "/", "Sec-WebSocket-Version: 8"); code != 426 {
		t.Errorf("upgrade with version 8: %d, want 426", code)
	}
	waitSample(t, murl, `wsbridge_connections_open{endpoint="*"}`, 1)
	waitSample(t, murl, `wsbridge_received_bytes_total{endpoint="*"}`, 5)
	waitSample(t, murl, `wsbridge_sent_bytes_total{endpoint="*"}`, 5)
	waitSample(t, murl, `wsbridge_children_running{}`, 1)
	waitSample(t, murl, `wsbridge_handshake_failures_total{status="426"}`, 1)
	waitSample(t, murl, `wsbridge_draining{}`, 0)

	b.Signal(syscall.SIGTERM)
	if !b.Log.WaitFor("draining: health checks get 503", 10*time.Second) {
		t.Fatal("no drain after SIGTERM")
	}
	if code, body := healthStatus(t, b.Addr, "/health"); code != 503 || body != "draining\n" {
		t.Errorf("/health while draining: %d %q, want 503 draining", code, body)
	}
	waitSample(t, murl, `wsbridge_draining{}`, 1)
	if err := old.WriteMessage(wstest.OpText, []byte("still"), 0); err != nil {
		t.Fatal(err)
	}
	old.ExpectMessage(t, wstest.OpText, "still")
	late := wstest.MustDial(t, b.Addr, wstest.Options{})
	if err := late.WriteMessage(wstest.OpText, []byte("late"), 0); err != nil {
		t.Fatal(err)
	}
	late.ExpectMessage(t, wstest.OpText, "late")
	waitSample(t, murl, `wsbridge_connections_total{endpoint="*"}`, 2)

	b.Signal(syscall.SIGTERM)
	err := b.Wait(10 * time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit after a second SIGTERM during the drain: %v, want status 1", err)
	}
}

// upgradeTo sends a WebSocket handshake for path with extra header lines
// replacing the defaults they name, and returns the status.
func upgradeTo(t *testing.T, addr, path string, extra ...string) (int, string) {
	t.Helper()
	req, _ := wstest.UpgradeRequest(addr, path)
	for _, h := range extra {
		name := h[:strings.Index(h, ":")+1]
		lines := strings.Split(req, "\r\n")
		for i, l := range lines {
			if strings.HasPrefix(l, name) {
				lines[i] = h
			}
		}
		req = strings.Join(lines, "\r\n")
	}
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	resp, err := c.Request(req, "")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestMetricsOnPublicPort: --metrics serves them on the public port at
// its path; without it nothing is served there.
func TestMetricsOnPublicPort(t *testing.T) {
	t.Parallel()
	b := startBridge(t, "--metrics=/stats", childBin, "echo")
	waitSample(t, "http://"+b.Addr+"/stats", `wsbridge_connections_total{endpoint="*"}`, 0)
	if code, _ := healthStatus(t, b.Addr, "/health"); code == 200 {
		t.Errorf("/health without --health: 200, want not served")
	}
}

func TestHealthFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--drain=3s", "cat"}, "--drain=3s answers health checks with 503 before shutting down: add --health"},
		{[]string{"--health", "--drain=-1s", "cat"}, "--drain must be ≥ 0"},
		{[]string{"--health=health", "cat"}, "--health=health: want a path starting with /"},
		{[]string{"--health=/x", "--metrics=/x", "cat"}, "--health and --metrics are both at /x"},
		{[]string{"--metrics-address=9101", "cat"}, "--metrics-address=9101: "},
		{[]string{"--metrics-address=127.0.0.1:0", "cat"}, "want a port number from 1 to 65535"},
		{[]string{"--inetd", "--health", "--drain=1s", "cat"}, "remove --drain"},
		{[]string{"--inetd", "--metrics-address=127.0.0.1:9101", "cat"}, "remove it"},
	} {
		out, err := exec.Command(bridgeBin, tc.args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: exit %v, output %q; want status 2 and %q", tc.args, err, out, tc.want)
		}
	}
}

// TestHealthConfigKeys: the config file takes the keys as the flags,
// health = PATH or yes.
func TestHealthConfigKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := dir + "/wsbridge.conf"
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if err := os.WriteFile(cfg, []byte("health = /hc\ndrain = 1s\nmetrics-address = "+maddr+"\n[endpoint /echo]\ncommand = "+childBin+" echo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBridge(t, "--config="+cfg)
	if code, body := healthStatus(t, b.Addr, "/hc"); code != 200 || body != "ok\n" {
		t.Errorf("/hc: %d %q, want 200 ok", code, body)
	}
	waitSample(t, "http://"+maddr+"/metrics", `wsbridge_connections_total{endpoint="/echo"}`, 0)
	if err := os.WriteFile(cfg, []byte("health = maybe\n[endpoint /echo]\ncommand = cat\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bridgeBin, "--config="+cfg).CombinedOutput()
	if !strings.Contains(string(out), "want yes, no or a path starting with /") {
		t.Errorf("health = maybe: %q, want the values it takes", out)
	}
}

// TestUsageListsEveryFlag: --help names every flag the daemon takes.
func TestUsageListsEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	new(daemonFlags).register(fs)
	new(endpointFlags).register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(usage, "--"+f.Name) {
			t.Errorf("--help does not mention --%s", f.Name)
		}
	})
}
