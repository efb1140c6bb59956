package main

// Several wsbridge instances behind one HAProxy, which checks --health:
// clients spread across them, and an instance told to stop drains (503)
// until HAProxy takes it out, then sends its clients 1001, and they
// reconnect to the others.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// haproxyProc is a running HAProxy, its log and its stats socket.
type haproxyProc struct {
	cmd   *exec.Cmd
	Addr  string // the frontend, 127.0.0.1:PORT
	Log   *wstest.Buffer
	stats string
	done  chan struct{}
}

// startHAProxy runs examples/deploy/haproxy/scale-out.cfg with the
// frontend on a free loopback port and the servers at backends, and stops
// it by its PID when the test ends.
func startHAProxy(t *testing.T, backends []string) *haproxyProc {
	t.Helper()
	bin := needTool(t, "/usr/sbin/haproxy", "apt-get install haproxy")
	src, err := os.ReadFile("../../examples/deploy/haproxy/scale-out.cfg")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := &haproxyProc{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Log: &wstest.Buffer{}, stats: filepath.Join(dir, "stats.sock"), done: make(chan struct{})}
	cfg := strings.NewReplacer(
		"bind :8080", "bind "+h.Addr,
		"/run/haproxy/wsbridge.sock", h.stats,
		"127.0.0.1:8081", backends[0],
		"127.0.0.1:8082", backends[1],
		"127.0.0.1:8083", backends[2],
	).Replace(string(src))
	// A reverse proxy to loopback only: every server line names 127.0.0.1.
	servers := 0
	for _, line := range strings.Split(cfg, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "server" {
			servers++
			if !strings.HasPrefix(f[2], "127.0.0.1:") {
				t.Fatalf("HAProxy server %s is not on loopback: %s", f[1], line)
			}
		}
	}
	if servers != len(backends) {
		t.Fatalf("config has %d servers, want %d:\n%s", servers, len(backends), cfg)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(bin, "-db", "-f", path) // -db: in the foreground, logging to our pipe
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
	return h
}

// status returns what HAProxy's stats socket says of each server of the
// wsbridge backend: UP, DOWN, ... and the last check's status and code.
func (h *haproxyProc) status(t *testing.T) map[string][3]string {
	t.Helper()
	var c net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if c, err = net.DialTimeout("unix", h.stats, 5*time.Second); err == nil {
			break
		}
		select {
		case <-h.done:
			t.Fatalf("HAProxy exited:\n%s", h.Log.String())
		default:
		}
		if time.Now().After(deadline) { // HAProxy makes it as it starts
			t.Fatalf("HAProxy's stats socket: %v\n%s", err, h.Log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		t.Fatal(err)
	}
	out := map[string][3]string{}
	var cols map[string]int
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			cols = map[string]int{}
			for i, name := range strings.Split(rest, ",") {
				cols[name] = i
			}
			continue
		}
		f := strings.Split(line, ",")
		if cols == nil || len(f) <= cols["check_code"] || f[cols["pxname"]] != "wsbridge" {
			continue
		}
		if sv := f[cols["svname"]]; sv != "BACKEND" {
			out[sv] = [3]string{f[cols["status"]], f[cols["check_status"]], f[cols["check_code"]]}
		}
	}
	return out
}

// waitStatus waits until server sv has status want (UP, DOWN) in HAProxy.
func (h *haproxyProc) waitStatus(t *testing.T, sv, want string) [3]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := h.status(t)[sv]
		if st[0] == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy says %s is %v, want %s", sv, st, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// instanceOf connects a client through HAProxy and returns it with the
// PID of the wsbridge that serves it: its child (testchild pid) says its
// own PID, whose parent is that wsbridge.
func instanceOf(t *testing.T, addr string) (*wstest.Conn, int) {
	t.Helper()
	c := wstest.MustDial(t, addr, wstest.Options{})
	_, data, _, err := c.ReadMessage(10 * time.Second)
	if err != nil {
		t.Fatalf("first message: %v", err)
	}
	var pid, pgid int
	if _, err := fmt.Sscanf(string(data), "pid %d pgid %d", &pid, &pgid); err != nil {
		t.Fatalf("first message %q: %v", data, err)
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			ppid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return c, ppid
		}
	}
	t.Fatalf("no PPid in /proc/%d/status", pid)
	return nil, 0
}

func TestScaleOutBehindHAProxy(t *testing.T) {
	t.Parallel()
	var (
		bridges []*bridgeProc
		addrs   []string
		names   = map[int]string{} // wsbridge PID: HAProxy's server name
	)
	for i := range 3 {
		b := startBridge(t, "--health", "--drain=3s", childBin, "pid")
		bridges = append(bridges, b)
		addrs = append(addrs, b.Addr)
		names[b.PID()] = "w" + strconv.Itoa(i+1)
	}
	h := startHAProxy(t, addrs)
	for _, sv := range []string{"w1", "w2", "w3"} {
		h.waitStatus(t, sv, "UP")
	}

	// Round robin: six clients, two on each instance.
	clients := map[string][]*wstest.Conn{}
	for range 6 {
		c, pid := instanceOf(t, h.Addr)
		sv, ok := names[pid]
		if !ok {
			t.Fatalf("a client is served by PID %d, none of the instances %v", pid, names)
		}
		clients[sv] = append(clients[sv], c)
	}
	for _, sv := range []string{"w1", "w2", "w3"} {
		if len(clients[sv]) == 0 {
			t.Fatalf("no client on %s: %v", sv, clients)
		}
	}

	// SIGTERM w2: during its drain HAProxy marks it down, for its 503.
	bridges[1].Signal(syscall.SIGTERM)
	if !bridges[1].Log.WaitFor("draining: health checks get 503", 10*time.Second) {
		t.Fatal("w2 did not drain")
	}
	st := h.waitStatus(t, "w2", "DOWN")
	if st[1] != "L7STS" || st[2] != "503" {
		t.Errorf("HAProxy's last check of w2: %s %s, want L7STS 503 (the drain's answer)", st[1], st[2])
	}
	if !h.Log.WaitFor("wsbridge/w2 is DOWN", 10*time.Second) {
		t.Errorf("HAProxy's log does not say w2 is DOWN")
	}
	// New clients go to the other two only.
	for range 4 {
		c, pid := instanceOf(t, h.Addr)
		if sv := names[pid]; sv != "w1" && sv != "w3" {
			t.Errorf("a new client went to %s (PID %d) while w2 drains; want w1 or w3", sv, pid)
		}
		c.Conn.Close()
	}
	// w2's clients get 1001 once its drain ends, and reconnect to the
	// others.
	for _, c := range clients["w2"] {
		if code := c.ExpectClose(t, 1001).CloseCode(); code != 1001 {
			t.Errorf("w2's client closed with %d, want 1001", code)
		}
		c.Conn.Close()
		c, pid := instanceOf(t, h.Addr)
		if sv := names[pid]; sv != "w1" && sv != "w3" {
			t.Errorf("a client that reconnected went to %s (PID %d); want w1 or w3", sv, pid)
		}
		c.Conn.Close()
	}
	if err := bridges[1].Wait(30 * time.Second); err != nil {
		t.Errorf("w2's exit after SIGTERM: %v, want status 0", err)
	}
	// The others' clients were never disturbed.
	for _, sv := range []string{"w1", "w3"} {
		for _, c := range clients[sv] {
			if err := c.WriteMessage(wstest.OpText, []byte("still here"), 0); err != nil {
				t.Fatal(err)
			}
			c.ExpectMessage(t, wstest.OpText, "still here")
		}
	}
}
