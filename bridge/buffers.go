package bridge

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/pool/pbytes"

	"github.com/wsbridge/wsbridge/framing"
)

// buffers hands out the byte slices that carry data between a socket and a
// child. A buffer is held only while data moves: readers give theirs back
// before they wait for more input, so an idle session holds none.
var buffers = pbytes.New(512, 1<<20)

func getBuffer(size int) []byte { return buffers.GetLen(size) }
func putBuffer(b []byte) {
	if b != nil {
		buffers.Put(b)
	}
}

// pollReader reads from a file descriptor the Go runtime polls (a TCP
// socket or a non-blocking pipe) without holding a buffer while it waits.
// Where the source exposes no file descriptor (a TLS connection, a test
// pipe) it falls back to a plain Read into a buffer it keeps.
type pollReader struct {
	rc   syscall.RawConn // nil: use r
	r    deadlineReader
	size int // buffer size
}

type deadlineReader interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// parkGrace is how long a reader with nothing to read waits in the Go
// runtime's poller before it parks. A busy connection (an echo takes a
// few hundred microseconds here) then never pays for parking, while an
// idle one parks almost at once, so stacks are reused across connections
// rather than held by idle ones.
const parkGrace = 5 * time.Millisecond

func newPollReader(r deadlineReader, size int) pollReader {
	pr := pollReader{r: r, size: size}
	if sc, ok := r.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			pr.rc = rc
		}
	}
	return pr
}

// errWouldBlock is readAt's answer, with wouldPark set, when nothing can
// be read now.
var errWouldBlock = errors.New("would block")

// readAt reads into (*buf)[off:]. When *buf is nil, a buffer is taken from
// the pool only once data is there; when off is 0 (nothing in the buffer
// worth keeping) the buffer goes back to the pool while the reader waits.
// With park set (and a pollable source) it does not wait at all: it
// returns errWouldBlock, holding no buffer, for the caller to park. It
// returns io.EOF at end of stream, as io.Reader does.
func (p pollReader) readAt(buf *[]byte, off int, park bool) (int, error) {
	if park && p.rc != nil {
		n, err := p.read(buf, off, false)
		if !errors.Is(err, errWouldBlock) {
			return n, err
		}
		// Nothing yet: wait a moment before parking. The deadline is
		// cleared after; callers that rely on one set it before each read.
		_ = p.r.SetReadDeadline(time.Now().Add(parkGrace))
		n, err = p.read(buf, off, true)
		_ = p.r.SetReadDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, errWouldBlock
		}
		return n, err
	}
	return p.read(buf, off, !park)
}

// read reads once into (*buf)[off:]; with wait it waits for data, else it
// returns errWouldBlock when there is none.
func (p pollReader) read(buf *[]byte, off int, wait bool) (int, error) {
	if p.rc == nil {
		if *buf == nil {
			*buf = getBuffer(p.size)
		}
		return p.r.Read((*buf)[off:])
	}
	var n int
	var rerr error
	err := p.rc.Read(func(fd uintptr) bool {
		if *buf == nil {
			*buf = getBuffer(p.size)
		}
		for {
			n, rerr = syscall.Read(int(fd), (*buf)[off:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			if off == 0 {
				putBuffer(*buf)
				*buf = nil
			}
			return !wait // wait for readiness unless told not to, holding no buffer
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n <= 0:
		return 0, io.EOF
	}
	return n, nil
}

// batchPool recycles the scratch a Send needs to frame pieces: headers and
// the vector handed to writev.
var batchPool = sync.Pool{New: func() any { return new(batch) }}

// maxBatch bounds the pieces framed by one write: two iovecs a piece stay
// under Linux's IOV_MAX of 1024.
const maxBatch = 256

type batch struct {
	hdr [maxBatch * 16]byte
	iov [maxBatch*3 + 1][]byte
}

// piecePool recycles the slices pieces are collected in between a read
// and the write that passes them on; an idle session holds none.
var piecePool = sync.Pool{New: func() any { s := make([]framing.Piece, 0, maxBatch); return &s }}

func getPieces() []framing.Piece { return (*piecePool.Get().(*[]framing.Piece))[:0] }
func putPieces(p []framing.Piece) {
	if p != nil {
		clear(p[:cap(p)]) // drop references to data buffers
		p = p[:0]
		piecePool.Put(&p)
	}
}

var errClosed = errors.New("connection closed")
