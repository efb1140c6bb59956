package poll

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadAtParkIdleHoldsNoBuffer(t *testing.T) {
	s, c := tcpPair(t)
	r := NewReader(s, 4096)
	if r.RawConn() == nil {
		t.Fatal("a TCP connection has no descriptor")
	}
	var buf []byte
	start := time.Now()
	n, err := r.ReadAt(&buf, 0, true)
	if !errors.Is(err, ErrWouldBlock) || n != 0 {
		t.Fatalf("ReadAt on an idle socket = %d, %v; want ErrWouldBlock", n, err)
	}
	if buf != nil {
		t.Fatalf("an idle reader holds a buffer of %d bytes", cap(buf))
	}
	if d := time.Since(start); d < ParkGrace {
		t.Fatalf("parked after %v, before ParkGrace", d)
	}

	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	n, err = r.ReadAt(&buf, 0, true)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("ReadAt with data = %q, %v", buf[:n], err)
	}
	// Data kept in the buffer (off > 0) stays there while the reader waits.
	n, err = r.ReadAt(&buf, n, true)
	if !errors.Is(err, ErrWouldBlock) || buf == nil || string(buf[:5]) != "hello" {
		t.Fatalf("ReadAt after kept data = %d, %v, buffer %q", n, err, buf)
	}
	Put(buf)
}

func TestReadAtDataArrivesDuringGrace(t *testing.T) {
	if testing.Short() {
		t.Skip("a write 1ms into a 5ms grace: an emulator's scheduler misses it")
	}
	s, c := tcpPair(t)
	r := NewReader(s, 4096)
	go func() {
		time.Sleep(ParkGrace / 5)
		_, _ = c.Write([]byte("late"))
	}()
	var buf []byte
	n, err := r.ReadAt(&buf, 0, true)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("ReadAt = %q, %v; want the data written within ParkGrace", buf[:n], err)
	}
	Put(buf)
}

func TestReadAtEOF(t *testing.T) {
	s, c := tcpPair(t)
	r := NewReader(s, 4096)
	c.Close()
	var buf []byte
	if n, err := r.ReadAt(&buf, 0, true); err != io.EOF {
		t.Fatalf("ReadAt after the peer closed = %d, %v; want io.EOF", n, err)
	}
	Put(buf)
}

func TestWritevNoWaitOnFullSocket(t *testing.T) {
	s, c := tcpPair(t) // the peer never reads
	if err := s.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	rc := rawConn(t, s)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	iov := [][]byte{chunk, chunk, chunk, chunk, chunk, chunk, chunk, chunk}
	want := 8 * len(chunk)
	full := 0
	n, err := Writev(rc, iov, false, func(uintptr) { full++ })
	if !errors.Is(err, ErrWouldBlock) || n <= 0 || n >= want {
		t.Fatalf("Writev of %d bytes to a small socket = %d, %v; want part and ErrWouldBlock", want, n, err)
	}
	// Loopback moves what the send buffer holds to the peer's receive
	// buffer meanwhile; once both are full nothing is taken, and onFull
	// runs.
	iov = Advance(iov, n)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err = Writev(rc, iov, false, func(uintptr) { full++ })
		if !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("Writev to a filling socket = %d, %v; want ErrWouldBlock", n, err)
		}
		if n == 0 {
			break
		}
		iov = Advance(iov, n)
		if time.Now().After(deadline) {
			t.Fatal("the socket never filled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if full == 0 {
		t.Fatal("onFull did not run at EAGAIN")
	}
}

func TestWritevWaitTakesPart(t *testing.T) {
	s, c := tcpPair(t)
	rc := rawConn(t, s)
	go func() { _, _ = io.Copy(io.Discard, c) }()
	iov := [][]byte{[]byte("ab"), []byte("cd")}
	n, err := Writev(rc, iov, true, nil)
	if err != nil || n != 4 {
		t.Fatalf("Writev = %d, %v; want 4", n, err)
	}
}

func TestAdvance(t *testing.T) {
	iov := [][]byte{[]byte("abc"), []byte("de"), nil, []byte("f")}
	got := Advance(iov, 4)
	if len(got) != 3 || string(got[0]) != "e" || string(got[2]) != "f" {
		t.Fatalf("Advance(4) = %q; want the partly written vector in front", got)
	}
	// Empty vectors left in front are dropped: writev is never given
	// only empty ones.
	if got := Advance(got, 1); len(got) != 1 || string(got[0]) != "f" {
		t.Fatalf("Advance past a vector followed by an empty one = %q", got)
	}
	if got := Advance([][]byte{[]byte("f")}, 1); len(got) != 0 {
		t.Fatalf("Advance to the end = %q", got)
	}
}

func TestReadHeld(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	p := make([]byte, 16)
	start := time.Now()
	if n, err := ReadHeld(r, p); err != io.EOF || n != 0 {
		t.Fatalf("ReadHeld on an empty pipe whose writer is open = %d, %v; want io.EOF", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("ReadHeld waited %v", d)
	}
	if _, err := w.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	if n, err := ReadHeld(r, p); err != nil || string(p[:n]) != "held" {
		t.Fatalf("ReadHeld = %q, %v; want what the pipe holds", p[:n], err)
	}
	w.Close()
	if n, err := ReadHeld(r, p); err != io.EOF || n != 0 {
		t.Fatalf("ReadHeld after the writer closed = %d, %v; want io.EOF", n, err)
	}
}

func TestPollNow(t *testing.T) {
	s, c := tcpPair(t)
	rc := rawConn(t, s)
	if ev := PollNow(rc, unix.POLLIN); ev&unix.POLLIN != 0 {
		t.Fatalf("an idle socket polls readable: %#x", ev)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for PollNow(rc, unix.POLLIN)&unix.POLLIN == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the socket never polled readable")
		}
		time.Sleep(time.Millisecond)
	}
	c.Close()
	for PollNow(rc, unix.POLLRDHUP)&unix.POLLRDHUP == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the peer's close never showed")
		}
		time.Sleep(time.Millisecond)
	}
}
