package poll

import (
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		c, _ := ln.AcceptTCP()
		accepted <- c
	}()
	client, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		server.Close()
		client.Close()
	})
	return server, client
}

func rawConn(t testing.TB, c syscall.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// quiet is how long a test waits to be sure something does not happen.
const quiet = 100 * time.Millisecond

func TestParkResumesOnceWhenDataArrives(t *testing.T) {
	p := newPoller(t)
	s1, c1 := tcpPair(t)
	s2, c2 := tcpPair(t)

	// The first resume blocks: if resumes ran on the poller's goroutine,
	// the second descriptor's could not run until it returned.
	var runs1 atomic.Int32
	release := make(chan struct{})
	resumed1, resumed2 := make(chan struct{}, 8), make(chan struct{}, 8)
	if err := p.Park(rawConn(t, s1), func() {
		runs1.Add(1)
		resumed1 <- struct{}{}
		<-release
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Park(rawConn(t, s2), func() { resumed2 <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed1:
		t.Fatal("resumed before any data arrived")
	case <-time.After(quiet):
	}
	if _, err := c1.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, resumed1, "resume after data")
	if _, err := c2.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, resumed2, "a second descriptor's resume while the first still runs")
	close(release)

	// One-shot: more data without a new Park resumes nothing.
	if _, err := c1.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(quiet)
	if n := runs1.Load(); n != 1 {
		t.Fatalf("resume ran %d times, want once", n)
	}

	// Parked again with data already waiting: it resumes at once.
	if err := p.Park(rawConn(t, s1), func() { resumed1 <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, resumed1, "resume of a re-park with data waiting")
}

func TestUnparkBeforeEvent(t *testing.T) {
	p := newPoller(t)
	s, c := tcpPair(t)
	rc := rawConn(t, s)
	resumed := make(chan struct{}, 1)
	if err := p.Park(rc, func() { resumed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if !p.Unpark(rc) {
		t.Fatal("Unpark of a parked descriptor reported false")
	}
	if p.Unpark(rc) {
		t.Fatal("second Unpark reported true")
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed:
		t.Fatal("resume ran after Unpark")
	case <-time.After(quiet):
	}
}

func TestUnparkAfterResume(t *testing.T) {
	p := newPoller(t)
	s, c := tcpPair(t)
	rc := rawConn(t, s)
	resumed := make(chan struct{}, 1)
	if err := p.Park(rc, func() { resumed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, resumed, "resume")
	// The resume owns the reader now: whoever unparks must not run it too.
	if p.Unpark(rc) {
		t.Fatal("Unpark after the resume ran reported true")
	}
}

func TestForget(t *testing.T) {
	p := newPoller(t)
	s, c := tcpPair(t)
	rc := rawConn(t, s)
	resumed := make(chan struct{}, 1)
	if err := p.Park(rc, func() { resumed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	p.Forget(rc)
	if p.Unpark(rc) {
		t.Fatal("Unpark after Forget reported true")
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed:
		t.Fatal("resume ran after Forget")
	case <-time.After(quiet):
	}

	// A forgotten descriptor, or another that gets its number once it is
	// closed, parks afresh.
	if err := p.Park(rc, func() { resumed <- struct{}{} }); err != nil {
		t.Fatalf("Park after Forget: %v", err)
	}
	waitFor(t, resumed, "resume after Forget and a new Park")
	p.Forget(rc)
	s.Close()
	s2, c2 := tcpPair(t)
	if err := p.Park(rawConn(t, s2), func() { resumed <- struct{}{} }); err != nil {
		t.Fatalf("Park of a new descriptor: %v", err)
	}
	if _, err := c2.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, resumed, "resume of a new descriptor")
}

func TestParkClosedDescriptorFails(t *testing.T) {
	p := newPoller(t)
	s, _ := tcpPair(t)
	rc := rawConn(t, s)
	s.Close()
	if err := p.Park(rc, func() { t.Error("resumed a closed descriptor") }); err == nil {
		t.Fatal("Park of a closed descriptor succeeded")
	}
}

func TestCloseStopsLoop(t *testing.T) {
	const loop = "poll.(*Poller).loop"
	waitStacks(t, loop, 0) // other tests' pollers, closed, may still be exiting
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	waitStacks(t, loop, 1) // the loop's goroutine may not have started yet
	s, c := tcpPair(t)
	resumed := make(chan struct{}, 1)
	if err := p.Park(rawConn(t, s), func() { resumed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	p.Close()
	waitStacks(t, loop, 0) // Close waits for the loop; its goroutine then exits
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed:
		t.Fatal("a parked reader was resumed after Close")
	case <-time.After(quiet):
	}
}

// countStacks returns how many goroutines have fn on their stack.
func countStacks(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// waitStacks waits a while for want goroutines to have fn on their stack.
func waitStacks(t *testing.T, fn string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := countStacks(fn)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines running %s, want %d", n, fn, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
