package poll

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Source is what a Reader reads: a connection or a file with read
// deadlines. One the runtime polls (a TCP socket, a non-blocking pipe:
// a syscall.Conn) is read on its descriptor directly, without holding a
// buffer while it waits.
type Source interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// Layered is a Source read through its own Read but polled on another's
// descriptor: a TLS connection over TCP (see the package doc).
type Layered interface {
	Source
	// Underlying returns the descriptor the Poller watches.
	Underlying() (syscall.RawConn, error)
	// ReadNow reads what the source holds already, without waiting
	// (see the package doc): ErrWouldBlock when there is nothing. It may miss what the
	// descriptor has (a tls.Conn's past-deadline Read does): the Reader
	// then peeks at the descriptor and reads with Read.
	ReadNow(p []byte) (int, error)
}

// Reader reads a Source without holding a buffer while it waits. Where
// the source has no descriptor of its own (a test pipe) it falls back to
// a plain Read into a buffer it keeps while it waits. A Reader is a small
// value; one goroutine at a time uses it.
type Reader struct {
	rc      syscall.RawConn // nil: use r
	r       Source
	size    int32 // buffer size
	layered bool  // r is a Layered: read through it, poll rc
}

// ParkGrace is how long a reader with nothing to read waits in the Go
// runtime's poller before it parks. A busy connection (an echo takes a
// few hundred microseconds here) then never pays for parking, while an
// idle one parks almost at once, so stacks are reused across connections
// rather than held by idle ones.
const ParkGrace = 5 * time.Millisecond

// NewReader returns a Reader of r whose buffers are size bytes.
func NewReader(r Source, size int) Reader {
	pr := Reader{r: r, size: int32(size)}
	if l, ok := r.(Layered); ok {
		if rc, err := l.Underlying(); err == nil {
			pr.rc, pr.layered = rc, true
		}
		return pr
	}
	if sc, ok := r.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			pr.rc = rc
		}
	}
	return pr
}

// RawConn returns the descriptor the Reader reads, or, for a Layered
// source, the one under it: what a Poller watches. nil when there is none.
func (p Reader) RawConn() syscall.RawConn { return p.rc }

// Layered reports whether the descriptor is another's, under the source
// (see Layered): bytes written to it would bypass the source.
func (p Reader) Layered() bool { return p.layered }

// ReadAt reads into (*buf)[off:]. When *buf is nil, a buffer is taken from
// the pool only once data is there; when off is 0 (nothing in the buffer
// worth keeping) the buffer goes back to the pool while the reader waits.
// With park set (and a polled source) it does not wait for long: after
// ParkGrace it returns ErrWouldBlock, holding no buffer, for the caller to
// park. It returns io.EOF at end of stream, as io.Reader does.
func (p Reader) ReadAt(buf *[]byte, off int, park bool) (int, error) {
	if park && p.rc != nil {
		n, err := p.read(buf, off, false)
		if !errors.Is(err, ErrWouldBlock) {
			return n, err
		}
		// Nothing yet: wait a moment before parking. The deadline is
		// cleared after; callers that rely on one set it before each read.
		_ = p.r.SetReadDeadline(time.Now().Add(ParkGrace))
		n, err = p.read(buf, off, true)
		_ = p.r.SetReadDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, ErrWouldBlock
		}
		return n, err
	}
	return p.read(buf, off, !park)
}

// read reads once into (*buf)[off:]; with wait it waits for data, else it
// returns ErrWouldBlock when there is none.
func (p Reader) read(buf *[]byte, off int, wait bool) (int, error) {
	if p.rc == nil {
		if *buf == nil {
			*buf = Get(int(p.size))
		}
		return p.r.Read((*buf)[off:])
	}
	if p.layered {
		return p.readLayered(buf, off, wait)
	}
	fr := fdReads.Get().(*fdRead)
	fr.buf, fr.off, fr.size, fr.wait = buf, off, int(p.size), wait
	err := p.rc.Read(fr.fn)
	n, rerr := fr.n, fr.err
	fr.buf, fr.err = nil, nil
	fdReads.Put(fr)
	switch {
	case err != nil:
		return 0, err
	case rerr == unix.EAGAIN:
		return 0, ErrWouldBlock
	case rerr != nil:
		return 0, rerr
	case n <= 0:
		return 0, io.EOF
	}
	return n, nil
}

// fdRead is one read of a polled descriptor into a pooled buffer. It is
// pooled with its method bound once, so that RawConn.Read is handed a
// func that already exists: a closure would be allocated at every read.
type fdRead struct {
	fn   func(fd uintptr) bool // do
	buf  *[]byte
	off  int
	size int
	wait bool
	n    int
	err  error
}

var fdReads = sync.Pool{New: func() any {
	r := new(fdRead)
	r.fn = r.do
	return r
}}

func (r *fdRead) do(fd uintptr) bool {
	if *r.buf == nil {
		*r.buf = Get(r.size)
	}
	r.n, r.err = readFD(fd, (*r.buf)[r.off:])
	if r.err == unix.EAGAIN {
		if r.off == 0 {
			Put(*r.buf)
			*r.buf = nil
		}
		return !r.wait // wait for readiness unless told not to, holding no buffer
	}
	return true
}

// readLayered reads a Layered source once: ReadNow first, which takes
// what the source holds; with wait and nothing there, the wait is on the
// descriptor, holding no buffer (a 1-byte peek), then a Read through the
// source. Not ReadNow again: a Read under a deadline already past never
// reaches the socket (the Go runtime fails it before the system call), so
// for a tls.Conn ReadNow gives only what crypto/tls holds, and going back
// to it would spin while the socket has data.
func (p Reader) readLayered(buf *[]byte, off int, wait bool) (int, error) {
	l := p.r.(Layered)
	if *buf == nil {
		*buf = Get(int(p.size))
	}
	n, err := l.ReadNow((*buf)[off:])
	if !errors.Is(err, ErrWouldBlock) {
		return n, err
	}
	if off == 0 {
		Put(*buf)
		*buf = nil
	}
	if !wait {
		return 0, ErrWouldBlock
	}
	var perr error
	err = p.rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, perr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK)
		return perr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	// Readable (or hung up): the Read takes what came, waiting, under the
	// caller's deadline, for the rest of a record that came in part.
	if *buf == nil {
		*buf = Get(int(p.size))
	}
	return l.Read((*buf)[off:])
}
