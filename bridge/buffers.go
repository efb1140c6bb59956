package bridge

import (
	"errors"
	"io"
	"sync"
	"syscall"

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
	r    io.Reader
	size int // buffer size
}

func newPollReader(r io.Reader, size int) pollReader {
	pr := pollReader{r: r, size: size}
	if sc, ok := r.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			pr.rc = rc
		}
	}
	return pr
}

// readAt reads into (*buf)[off:]. When *buf is nil, a buffer is taken from
// the pool only once data is there; when off is 0 (nothing in the buffer
// worth keeping) the buffer goes back to the pool while the reader waits.
// It returns io.EOF at end of stream, as io.Reader does.
func (p pollReader) readAt(buf *[]byte, off int) (int, error) {
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
			return false // wait for readiness, holding no buffer
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
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
