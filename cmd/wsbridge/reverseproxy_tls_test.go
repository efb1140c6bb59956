package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// startHAProxyConfig runs the HAProxy configuration file recipe (of
// examples/deploy/haproxy) with its strings replaced as replace says
// (old, new, ...), checks that every server it names is on loopback,
// waits for its frontend at addr, and stops it by PID when the test ends.
func startHAProxyConfig(t *testing.T, recipe, addr string, replace ...string) *haproxyProc {
	t.Helper()
	bin := needTool(t, "/usr/sbin/haproxy", "apt-get install haproxy")
	src, err := os.ReadFile(filepath.Join("../../examples/deploy/haproxy", recipe))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(replace...).Replace(string(src))
	for _, line := range strings.Split(cfg, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "server" && !strings.HasPrefix(f[2], "127.0.0.1:") {
			t.Fatalf("HAProxy server %s is not on loopback: %s", f[1], line)
		}
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &haproxyProc{Addr: addr, Log: &wstest.Buffer{}, done: make(chan struct{})}
	h.cmd = exec.Command(bin, "-db", "-f", path)
	h.cmd.Stdout, h.cmd.Stderr = h.Log, h.Log
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(h.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
		if t.Failed() {
			t.Logf("haproxy log:\n%s", h.Log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return h
		}
		select {
		case <-h.done:
			t.Fatalf("haproxy exited:\n%s", h.Log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s:\n%s", addr, h.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialWSSFrom dials a wss session to addr from the loopback address from,
// so that the address the program sees tells whether it came through
// the proxy's word (from) or from the proxy's socket (127.0.0.1).
func dialWSSFrom(t *testing.T, addr, from string, o wstest.Options) *wstest.Conn {
	t.Helper()
	conn, err := (&net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wstest.Handshake(conn, addr, o)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

// programEnv reads what the env child prints first: its environment.
func programEnv(t *testing.T, c *wstest.Conn) map[string]string {
	t.Helper()
	env := map[string]string{}
	for env["SERVER_SOFTWARE"] == "" {
		_, data, _, err := c.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("reading the program's environment: %v (so far %v)", err, env)
		}
		k, v, _ := strings.Cut(string(data), "=")
		env[k] = v
	}
	return env
}

// TestHAProxyTLSPassthrough: HAProxy in TCP mode in front of wsbridge's
// own TLS, with send-proxy-v2 (examples/deploy/haproxy/tls-passthrough.cfg):
// the client sees wsbridge's certificate, the program sees HTTPS=on and
// the client's address, not HAProxy's; and a client that sends a PROXY
// header itself, not through HAProxy, is refused.
func TestHAProxyTLSPassthrough(t *testing.T) {
	ca := newTestCA(t, "passthrough")
	cert, key, sum := ca.issue("server", false, "127.0.0.1")
	b := startBridge(t, "--ssl", "--sslcert="+cert, "--sslkey="+key, "--proxy-protocol", "--trusted-proxy=127.0.0.1/32", childBin, "env")
	front := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startHAProxyConfig(t, "tls-passthrough.cfg", front, "bind :443", "bind "+front, "127.0.0.1:8443", b.Addr)

	c := dialWSSFrom(t, front, "127.0.0.2", wstest.Options{TLS: ca.client("", "")})
	env := programEnv(t, c)
	if env["REMOTE_ADDR"] != "127.0.0.2" || env["HTTPS"] != "on" {
		t.Errorf("through HAProxy's TCP mode: REMOTE_ADDR=%q HTTPS=%q, want 127.0.0.2 (the client, from send-proxy-v2) and on", env["REMOTE_ADDR"], env["HTTPS"])
	}
	if servedCert(t, front) != sum {
		t.Error("the certificate through HAProxy is not wsbridge's: TLS did not pass through")
	}
	echoesAfter(t, c, "through haproxy")

	// Straight to wsbridge from 127.0.0.2, an address not trusted: a
	// PROXY header naming anyone is refused.
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "PROXY TCP4 10.9.9.9 127.0.0.1 1234 443\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 64)); err == nil {
		t.Errorf("a PROXY header from an untrusted address got %d bytes of answer, want the connection closed", n)
	}
	if !b.Log.WaitFor("PROXY protocol header from an address not trusted", 5*time.Second) {
		t.Errorf("the forged PROXY header is not logged:\n%s", b.Log)
	}
}
