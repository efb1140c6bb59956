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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// haproxyProc is a running HAProxy (a webServer of startWebServer's), its
// log and its stats socket.
type haproxyProc struct {
	*webServer
	Out   *wstest.Buffer // its log: the recipes log to stdout
	stats string
}

// startHAProxy runs the HAProxy recipe examples/deploy/RECIPE in the
// foreground with its ports and paths replaced: subst is pairs old, new
// (see proxyRecipe), and a new may use startWebServer's {{PORT}} and {{DIR}}.
// Every server line must name a loopback address once replaced. The stats
// socket, where a recipe has one, is to be {{DIR}}/stats.sock.
func startHAProxy(t *testing.T, rel string, subst ...string) *haproxyProc {
	t.Helper()
	bin := needTool(t, "/usr/sbin/haproxy", "apt-get install haproxy")
	cfg := proxyRecipe(t, rel, subst...)
	// A reverse proxy to loopback only.
	for _, line := range strings.Split(cfg, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "server" && !strings.HasPrefix(f[2], "127.0.0.1:") {
			t.Fatalf("HAProxy server %s is not on loopback: %s", f[1], line)
		}
	}
	w := startWebServer(t, "haproxy", cfg, func(dir string) []string {
		return []string{bin, "-db", "-f", filepath.Join(dir, "server.conf")} // -db: in the foreground, logging to our pipe
	})
	return &haproxyProc{webServer: w, Out: w.out, stats: filepath.Join(w.Dir, "stats.sock")}
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
			t.Fatalf("HAProxy exited:\n%s", h.Log())
		default:
		}
		if time.Now().After(deadline) { // HAProxy makes it as it starts
			t.Fatalf("HAProxy's stats socket: %v\n%s", err, h.Log())
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
	h := startHAProxy(t, "haproxy/scale-out.cfg",
		"bind :8080", "bind 127.0.0.1:{{PORT}}",
		"/run/haproxy/wsbridge.sock", "{{DIR}}/stats.sock",
		"127.0.0.1:8081", addrs[0], "127.0.0.1:8082", addrs[1], "127.0.0.1:8083", addrs[2])
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
	if !h.Out.WaitFor("wsbridge/w2 is DOWN", 10*time.Second) {
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
