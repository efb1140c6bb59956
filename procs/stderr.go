package procs

import (
	"bytes"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxLine is the longest line Spec.Stderr is given; longer ones are split.
const maxLine = 4 << 10

// lineBuf holds a line being assembled. Two bytes more than maxLine: a
// line of exactly maxLine bytes and its CRLF fit, so it is not split.
type lineBuf [maxLine + 2]byte

var lineBufs = sync.Pool{New: func() any { return new(lineBuf) }}

// lineSplitter cuts a byte stream into lines for Spec.Stderr. It holds a
// pooled buffer only while a line is incomplete, so an idle child that
// has written whole lines costs no buffer. Not safe for concurrent use.
type lineSplitter struct {
	buf  *lineBuf // nil when n == 0 and no read is in progress
	n    int      // bytes of an incomplete line at the start of buf
	emit func(line []byte)
}

// space returns the free part of the buffer, taking one from the pool if
// needed. The caller reads into it and calls advance, or calls idle.
func (s *lineSplitter) space() []byte {
	if s.buf == nil {
		s.buf = lineBufs.Get().(*lineBuf)
	}
	return s.buf[s.n:]
}

// idle gives the buffer back when it holds nothing.
func (s *lineSplitter) idle() {
	if s.n == 0 && s.buf != nil {
		lineBufs.Put(s.buf)
		s.buf = nil
	}
}

// advance takes nr bytes just read into space, emits every complete line
// and keeps the rest.
func (s *lineSplitter) advance(nr int) {
	s.n += nr
	data := s.buf[:s.n]
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := data[:i]
		if i > 0 && line[i-1] == '\r' {
			line = line[:i-1]
		}
		s.emitSplit(line)
		data = data[i+1:]
	}
	if len(data) == len(s.buf) {
		// Full without a newline: the line is longer than maxLine.
		s.emit(data[:maxLine])
		data = data[maxLine:]
	}
	s.n = copy(s.buf[:], data)
	s.idle()
}

// emitSplit emits line in pieces of at most maxLine bytes.
func (s *lineSplitter) emitSplit(line []byte) {
	for len(line) > maxLine {
		s.emit(line[:maxLine])
		line = line[maxLine:]
	}
	s.emit(line)
}

// finish emits an unterminated last line and gives the buffer back.
func (s *lineSplitter) finish() {
	if s.n > 0 {
		s.emitSplit(s.buf[:s.n])
		s.n = 0
	}
	s.idle()
}

// write feeds p as if it had been read; tests use it.
func (s *lineSplitter) write(p []byte) {
	for len(p) > 0 {
		n := copy(s.space(), p)
		p = p[n:]
		s.advance(n)
	}
}

// Parker lets the stderr reader give up its goroutine while the child is
// silent, so an idle child costs no goroutine. The bridge's poller is one.
type Parker interface {
	// Park arranges for resume to run on a new goroutine once rc is
	// readable or hung up, or returns an error if rc cannot be watched.
	Park(rc syscall.RawConn, resume func()) error
	// Unpark cancels a Park whose resume has not run, reporting whether
	// there was one.
	Unpark(rc syscall.RawConn) bool
	// Forget drops rc for good, before it is closed.
	Forget(rc syscall.RawConn)
}

// stderrReader is the reader of a child's stderr. It runs on a goroutine
// while there is something to read, and with a Parker parks in between.
type stderrReader struct {
	p        *Process
	rc       syscall.RawConn
	split    lineSplitter
	parker   Parker      // nil: keep a goroutine blocked in the read
	blocking bool        // Park failed: wait in the read instead; owned by the reader
	stop     atomic.Bool // stopStderr gave up waiting for EOF: do not park again
}

// run delivers stderr's lines until EOF, an error, or the read deadline
// Terminate sets, then closes the pipe and p.stderrDone; or, with a
// Parker, until nothing is left to read, and parks. It reads through
// RawConn so that the pooled buffer is taken only when data is there and
// given back on EAGAIN.
func (r *stderrReader) run() {
	for {
		var nr int
		var rerr error
		err := r.rc.Read(func(fd uintptr) bool {
			nr, rerr = unix.Read(int(fd), r.split.space())
			if rerr == unix.EAGAIN {
				r.split.idle()
				return r.parker != nil && !r.blocking // park below, or wait here
			}
			return true
		})
		switch {
		case err != nil: // deadline or closed
		case rerr == unix.EAGAIN:
			if r.parker.Park(r.rc, r.run) == nil {
				// A stop that came while parking found nothing to
				// wake: look again now.
				if r.stop.Load() && r.parker.Unpark(r.rc) {
					continue // the read sees the deadline
				}
				return
			}
			r.blocking = true // cannot park: wait in the read instead
			continue
		case rerr == unix.EINTR:
			continue
		case rerr == nil && nr > 0:
			r.split.advance(nr)
			continue
		}
		break // error or EOF
	}
	r.split.finish()
	if r.parker != nil {
		r.parker.Forget(r.rc)
	}
	r.p.stderr.Close()
	close(r.p.stderrDone)
}

// stopStderr waits up to grace+stderrDrain for the stderr goroutine to see
// EOF, then makes its read fail and waits for it to return.
func (p *Process) stopStderr(grace time.Duration) {
	if p.stderrDone == nil {
		return
	}
	t := time.NewTimer(grace + stderrDrain)
	defer t.Stop()
	select {
	case <-p.stderrDone:
		return
	case <-t.C:
	}
	// Something outside the group holds the write end; stop listening.
	p.stderr.SetReadDeadline(time.Now())
	r := p.stderrReader
	r.stop.Store(true) // before Unpark: a reader parking now checks it after
	if r.parker != nil && r.parker.Unpark(r.rc) {
		go r.run() // it sees the deadline at once
	}
	<-p.stderrDone
}
