package procs

import (
	"bytes"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestStderrLines(t *testing.T) {
	long := strings.Repeat("x", 2*maxLine+100)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"numbered lines in order", []string{"stderr", "3"}, []string{"err 1", "err 2", "err 3"}},
		{"CRLF and empty lines", errBytes("a\r\n\nb\r\r\n"), []string{"a", "", "b\r"}},
		{"final partial line", errBytes("one\ntwo"), []string{"one", "two"}},
		{"long line split", errBytes(long + "\nend\n"), []string{long[:maxLine], long[maxLine : 2*maxLine], long[2*maxLine:], "end"}},
		{"line of exactly maxLine with CRLF", errBytes(long[:maxLine] + "\r\n"), []string{long[:maxLine]}},
		{"nothing", errBytes(""), nil},
	}
	for _, tt := range tests {
		for _, parked := range []bool{false, true} {
			name := tt.name
			if parked {
				name += " parked"
			}
			t.Run(name, func(t *testing.T) {
				var mu sync.Mutex
				var got []string
				spec := child(tt.args...)
				pp := &pollParker{}
				if parked {
					// The child stays silent until stdin closes, and
					// stdin closes once the reader has parked: on a
					// loaded machine a child that wrote at once could
					// be read to EOF before the reader ever waited.
					spec = child(append([]string{"after-eof"}, tt.args...)...)
					spec.Parker = pp
				}
				spec.Stderr = func(line []byte) {
					mu.Lock()
					got = append(got, string(line))
					mu.Unlock()
				}
				p := mustStart(t, spec)
				if parked {
					waitParked(t, pp)
				}
				p.Stdin.Close()
				waitDone(t, p) // the child ends on its own, however slow it is
				if err := p.Terminate(0); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
					t.Errorf("got %d lines %.200q\nwant %d lines %.200q", len(got), got, len(tt.want), tt.want)
				}
				if parked && pp.parks.Load() == 0 {
					t.Errorf("the reader never parked")
				}
			})
		}
	}
}

// waitParked waits until the reader has parked at least once.
func waitParked(t *testing.T, pp *pollParker) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); pp.parks.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the stderr reader of a silent child did not park within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// pollParker parks with a goroutine blocked in poll(2): enough to drive
// the stderr reader's parking path in tests.
type pollParker struct{ parks atomic.Int32 }

func (pp *pollParker) Park(rc syscall.RawConn, resume func()) error {
	pp.parks.Add(1)
	go func() {
		_ = rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				if _, err := unix.Poll(fds, -1); err != unix.EINTR {
					return
				}
			}
		})
		resume()
	}()
	return nil
}

func (pp *pollParker) Unpark(syscall.RawConn) bool { return false }
func (pp *pollParker) Forget(syscall.RawConn)      {}

func errBytes(s string) []string { return []string{"errbytes", hex.EncodeToString([]byte(s))} }

// splitAll feeds in to a lineSplitter in chunks of size and returns the
// lines.
func splitAll(in []byte, size int) []string {
	var got []string
	s := lineSplitter{emit: func(line []byte) { got = append(got, string(line)) }}
	for len(in) > 0 {
		n := min(size, len(in))
		s.write(in[:n])
		in = in[n:]
	}
	s.finish()
	return got
}

func TestLineSplitter(t *testing.T) {
	x := strings.Repeat("x", maxLine)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"one line", "a\n", []string{"a"}},
		{"no newline", "a", []string{"a"}},
		{"empty lines", "\n\n", []string{"", ""}},
		{"CRLF", "a\r\nb\r\n", []string{"a", "b"}},
		{"lone CR kept", "a\rb\n", []string{"a\rb"}},
		{"CR at EOF kept", "a\r", []string{"a\r"}},
		{"maxLine", x + "\n", []string{x}},
		{"maxLine with CRLF", x + "\r\n", []string{x}},
		{"maxLine+1", x + "y\n", []string{x, "y"}},
		{"maxLine+1 with CRLF", x + "y\r\n", []string{x, "y"}},
		{"maxLine+1 no newline", x + "y", []string{x, "y"}},
		{"twice maxLine", x + x + "\n", []string{x, x}},
		{"CR at a split", x + "\r\r\n", []string{x, "\r"}},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 3, 100, 1 << 20} {
			got := splitAll([]byte(tt.in), size)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("%s, chunks of %d: got %d lines %.60q, want %d lines %.60q", tt.name, size, len(got), got, len(tt.want), tt.want)
			}
		}
	}
}

// An idle splitter holds no buffer; one in the middle of a line does.
func TestLineSplitterReleasesBuffer(t *testing.T) {
	s := lineSplitter{emit: func([]byte) {}}
	s.write([]byte("whole\n"))
	if s.buf != nil {
		t.Error("holds a buffer after a whole line")
	}
	s.write([]byte("part"))
	if s.buf == nil {
		t.Error("lost an incomplete line's buffer")
	}
	s.finish()
	if s.buf != nil {
		t.Error("holds a buffer after finish")
	}
}

// FuzzLineSplitter: lines are never longer than maxLine nor hold a
// newline, and the input is the lines joined back, less each newline and
// the CR before it, whatever the chunking.
func FuzzLineSplitter(f *testing.F) {
	f.Add([]byte("a\r\nb\n\nc"), uint16(1))
	f.Add(bytes.Repeat([]byte("ab\r"), 3000), uint16(7))
	f.Add(append(bytes.Repeat([]byte("x"), maxLine+1), "\r\n"...), uint16(4096))
	f.Fuzz(func(t *testing.T, in []byte, size uint16) {
		got := splitAll(in, int(size)+1)
		var joined []byte
		for _, l := range got {
			if len(l) > maxLine || strings.IndexByte(l, '\n') >= 0 {
				t.Fatalf("bad line %q", l)
			}
			joined = append(joined, l...)
		}
		want := bytes.ReplaceAll(in, []byte("\r\n"), nil)
		want = bytes.ReplaceAll(want, []byte("\n"), nil)
		if !bytes.Equal(joined, want) {
			t.Fatalf("joined lines differ from the input")
		}
	})
}

// TestStopStderrWhileParking: Terminate gives up on a stderr that is not at
// EOF once the group is gone (something outside it holds the pipe open).
// Its stop may come while the reader is between EAGAIN and Park, when
// there is nothing parked to wake: the reader must still see it, or
// Terminate waits for ever.
func TestStopStderrWhileParking(t *testing.T) {
	lp := &lateParker{unparked: make(chan struct{})}
	spec := child("sleep")
	spec.Stderr = func([]byte) {}
	spec.Parker = lp
	p := mustStart(t, spec)
	done := make(chan error, 1)
	go func() { done <- p.Terminate(0) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Terminate still waiting for the stderr reader after 5s")
		lp.resumeParked() // let it end, so the test can
		<-done
	}
}

// lateParker parks the stderr reader only once Unpark has been called (as
// if the reader were slow to park just when it is stopped), and resumes
// it only through Unpark: the pipe never turns readable.
type lateParker struct {
	unparked chan struct{} // closed by the first Unpark
	once     sync.Once
	mu       sync.Mutex
	resume   func() // the parked reader
}

func (lp *lateParker) Park(rc syscall.RawConn, resume func()) error {
	<-lp.unparked
	lp.mu.Lock()
	lp.resume = resume
	lp.mu.Unlock()
	return nil
}

func (lp *lateParker) Unpark(syscall.RawConn) bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.resume != nil {
		lp.resume = nil
		return true
	}
	lp.once.Do(func() { close(lp.unparked) })
	return false
}

func (lp *lateParker) Forget(syscall.RawConn) {}

func (lp *lateParker) resumeParked() {
	lp.mu.Lock()
	resume := lp.resume
	lp.resume = nil
	lp.mu.Unlock()
	if resume != nil {
		go resume()
	}
}
