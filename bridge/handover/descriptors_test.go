package handover

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHandOverLeavesNoDescriptor: whatever a sender hands over, taken,
// refused or denied, the daemon holds no descriptor of it afterwards
// (it runs for months; each leak is one client socket or pipe kept).
func TestHandOverLeavesNoDescriptor(t *testing.T) {
	l, path, _ := listen(t, Config{})
	_, denyPath, _ := listen(t, Config{Allow: func(uint32, uint32) bool { return false }})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	good, err := Encode(boaUpgrade)
	if err != nil {
		t.Fatal(err)
	}
	socket := func() []int {
		client, fd := tcpPair(t)
		client.Close()
		return []int{fd}
	}
	pipes := func(n int) func() []int {
		return func() []int {
			var fds []int
			for range n {
				var p [2]int
				if err := unix.Pipe(p[:]); err != nil {
					t.Fatal(err)
				}
				fds = append(fds, p[0], p[1])
			}
			return fds
		}
	}
	unconnected := func() []int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		return []int{fd}
	}
	huge := append([]byte(string(good)), strings.Repeat("HTTP_X=aaaaaaaa\x00", 5000)...)
	for _, c := range []struct {
		name, path, answer string
		msg                []byte
		fds                func() []int
	}{
		{"socket", path, "OK", good, socket},
		{"pipes", path, "OK", good, pipes(1)},
		{"pipes reversed", path, "ERR", good, func() []int { p := pipes(1)(); return []int{p[1], p[0]} }},
		{"no descriptor", path, "ERR", good, func() []int { return nil }},
		{"no magic", path, "ERR", []byte("junk"), socket},
		{"too large", path, "ERR", huge, socket},
		{"20 descriptors", path, "ERR", good, pipes(10)},
		{"unconnected socket", path, "ERR", good, unconnected},
		{"denied", denyPath, "DENY", good, socket},
		{"denied, 20 descriptors", denyPath, "DENY", good, pipes(10)},
	} {
		send := func() {
			fds := c.fds()
			if a := sendRaw(t, c.path, c.msg, fds); !strings.HasPrefix(a, c.answer) {
				t.Errorf("%s: answer %q, want %s", c.name, a, c.answer)
			}
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
		send() // the first may open what stays (the poller's)
		time.Sleep(50 * time.Millisecond)
		before := openFDs(t)
		for range 5 {
			send()
		}
		time.Sleep(100 * time.Millisecond) // the receivers finish after answering
		if after := openFDs(t); after > before {
			t.Errorf("%s: %d descriptors more after 5 hand-overs", c.name, after-before)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// sendRaw sends msg with fds as one message, as a sender would, and
// returns the answer.
func sendRaw(t *testing.T, path string, msg []byte, fds []int) string {
	t.Helper()
	c, err := net.Dial("unixpacket", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	_ = uc.SetDeadline(time.Now().Add(3 * time.Second))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := uc.WriteMsgUnix(msg, oob, nil); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 512)
	n, _ := uc.Read(b)
	return string(b[:n])
}
