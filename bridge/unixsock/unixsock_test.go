package unixsock

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListen: a stale socket is replaced, a live one is refused and left
// to its daemon, a file that is no socket stays, and the socket has the
// mode asked for from the moment it has its name.
func TestListen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close() // bound, then its owner gone without removing it

	l, err := Listen("unix", path, Perm{Mode: 0o600})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v, want 0600", fi.Mode(), err)
	}
	if l.Addr().String() != path {
		t.Errorf("Addr = %s, want %s", l.Addr(), path)
	}
	if _, err := Listen("unix", path, Perm{}); err == nil || !strings.Contains(err.Error(), "is serving") {
		t.Fatalf("Listen over a live socket: %v, want a refusal", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live socket was harmed by the refused Listen: %v", err)
	}
	c.Close()
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("Close left the socket file: %v", err)
	}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix", file, Perm{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("the regular file was replaced")
	}
}
