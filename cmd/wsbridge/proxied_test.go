package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// TestProxiedFlags: the start errors of the proxy flags say what to do.
func TestProxiedFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--proxy-protocol", "--unixsocket=/tmp/x.sock", "cat"}, "--trusted-proxy"},
		{[]string{"--trusted-proxy=10.0.0.0/33", "cat"}, "want an address or a CIDR"},
		{[]string{"--unixsocket-mode=0600", "cat"}, "need --unixsocket"},
		{[]string{"--unixsocket=/tmp/x.sock", "--unixsocket-mode=999", "cat"}, "octal"},
		{[]string{"--inetd", "--unixsocket=/tmp/x.sock", "cat"}, "--inetd"},
	} {
		_, err := parseFlags(tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// TestUnixSocket: the daemon serves a WebSocket session on --unixsocket
// beside --port, with the mode asked for, and a second daemon refuses to replace
// the live socket.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "wsb.sock")
	startBridge(t, "--unixsocket="+sock, "--unixsocket-mode=0600", childBin, "echo")
	conn, err := net.Dial("unix", sock) // made before the TCP listener startBridge waits for
	if err != nil {
		t.Fatalf("dialing %s: %v", sock, err)
	}
	defer conn.Close()
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v %v, want 0600", fi.Mode(), err)
	}
	c := wstest.New(conn, 0)
	if resp, err := c.Upgrade(wstest.Options{Path: "/", Host: "localhost"}); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade over the unix socket: %v %v", resp, err)
	}
	if err := c.WriteMessage(wstest.OpText, []byte("over unix"), 0); err != nil {
		t.Fatal(err)
	}
	if _, data, _, err := c.ReadMessage(10 * time.Second); err != nil || string(data) != "over unix" {
		t.Fatalf("echo %q %v", data, err)
	}
	out, err := exec.Command(bridgeBin, "--unixsocket="+sock, childBin, "echo").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is serving "+sock) {
		t.Errorf("a second daemon on the live socket: %v %s", err, out)
	}
}
