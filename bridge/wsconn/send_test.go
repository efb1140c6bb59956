package wsconn

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/wsbridge/wsbridge/framing"
)

// wrapped is a socket behind a type of another package's, as a
// connection handed over is (bridge/handover.Conn): net.Buffers would
// write it a write(2) per buffer. It counts the writes that go through
// it.
type wrapped struct {
	net.Conn
	writes atomic.Int64
}

func (w *wrapped) Write(p []byte) (int, error) { w.writes.Add(1); return w.Conn.Write(p) }
func (w *wrapped) SyscallConn() (syscall.RawConn, error) {
	return w.Conn.(syscall.Conn).SyscallConn()
}
func (w *wrapped) WriteSyscallConn() (syscall.RawConn, error) { return w.SyscallConn() }

// TestSendWrappedWritesOnce: frames to a wrapped socket go out with
// writev on its descriptor, all of a batch at once, as to a bare one: not
// a write per header and per payload (seen as a seventh of the direct
// rate in make bench's hand-over rows).
func TestSendWrappedWritesOnce(t *testing.T) {
	server, client := loopback(t)
	w := &wrapped{Conn: server}
	c := New(w, &Config{ReadBuffer: 4096}, nil)
	pieces := []framing.Piece{
		{Kind: framing.Text, First: true, Final: true, Data: []byte("one")},
		{Kind: framing.Text, First: true, Final: true, Data: []byte("two")},
		{Kind: framing.Binary, First: true, Final: true, Data: []byte{0, 1, 2}},
	}
	for range 10 {
		if err := c.Send(pieces); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.writes.Load(); n != 0 {
		t.Errorf("%d write(2) calls through the connection for 10 batches: want them all as writev on the descriptor", n)
	}
	want := 10 * (3*2 + 3 + 3 + 3) // a 2-byte header per frame
	got := make([]byte, want)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 0x81 || got[1] != 3 || string(got[2:5]) != "one" || got[10] != 0x82 {
		t.Errorf("frames % x", got[:13])
	}
}

// written is a connection that must be written through, as a TLS one
// (bridge/tlsconn): no descriptor to writev. It counts its Writes, each
// of which crypto/tls would seal as records of its own and write with a
// system call.
type written struct {
	net.Conn
	writes atomic.Int64
}

func (w *written) Write(p []byte) (int, error) { w.writes.Add(1); return w.Conn.Write(p) }

// TestSendThroughJoins: frames to a connection written through go out
// gathered, a Write per batch, not one per header and per payload (a TLS
// record and a system call each: make bench's wss stream of 64 B
// messages cost 12.6 µs of CPU a message against 1.39 plain); a payload
// larger than the gathering buffer still arrives whole.
func TestSendThroughJoins(t *testing.T) {
	server, client := loopback(t)
	w := &written{Conn: server}
	c := New(w, &Config{ReadBuffer: 4096}, nil)
	pieces := []framing.Piece{
		{Kind: framing.Text, First: true, Final: true, Data: []byte("one")},
		{Kind: framing.Text, First: true, Final: true, Data: []byte("two")},
		{Kind: framing.Binary, First: true, Final: true, Data: []byte{0, 1, 2}},
	}
	for range 10 {
		if err := c.Send(pieces); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.writes.Load(); n != 10 {
		t.Errorf("%d Writes for 10 batches of 3 frames, want 10", n)
	}
	want := 10 * (3*2 + 3 + 3 + 3) // a 2-byte header per frame
	got := make([]byte, want)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 0x81 || got[1] != 3 || string(got[2:5]) != "one" || got[10] != 0x82 || string(got[want-5:]) != "\x82\x03\x00\x01\x02" {
		t.Errorf("frames % x ... % x", got[:13], got[want-5:])
	}

	big := make([]byte, joinSize+100)
	for i := range big {
		big[i] = byte(i)
	}
	done := make(chan error, 1)
	go func() { done <- c.Send([]framing.Piece{{Kind: framing.Binary, First: true, Final: true, Data: big}}) }()
	frame := make([]byte, 4+len(big)) // 0x82, 126, a 16-bit length
	if _, err := io.ReadFull(client, frame); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if frame[0] != 0x82 || frame[1] != 126 || int(frame[2])<<8|int(frame[3]) != len(big) || string(frame[4:]) != string(big) {
		t.Errorf("a %d-byte message arrived as % x ...", len(big), frame[:8])
	}
}

// TestWriteLockedThroughJoins: the shared mode's frames to a connection
// written through (TLS) go out gathered too, and the count says how many
// bytes the connection took.
func TestWriteLockedThroughJoins(t *testing.T) {
	server, client := loopback(t)
	w := &written{Conn: server}
	c := New(w, &Config{ReadBuffer: 4096}, nil)
	iov := [][]byte{{0x81, 3}, []byte("one"), {0x81, 3}, []byte("two")}
	c.LockWrite()
	n, err := c.WriteLocked(iov, true)
	c.UnlockWrite()
	if err != nil || n != 10 {
		t.Fatalf("WriteLocked: %d %v, want 10 bytes", n, err)
	}
	if k := w.writes.Load(); k != 1 {
		t.Errorf("%d Writes for one batch of 4 buffers, want 1", k)
	}
	got := make([]byte, 10)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "\x81\x03one\x81\x03two" {
		t.Errorf("read % x %v", got, err)
	}
}
