package bridge

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/framing"
)

// stdinWriter frames message pieces for a child's stdin and writes each
// batch with writev: the data goes from the socket's read buffer to the
// pipe without a copy.
type stdinWriter struct {
	f   *os.File
	rc  syscall.RawConn
	enc framing.Encoder

	// gone, when set, is asked every stdinPatience while a write waits
	// for a child that does not read: a true answer abandons the write.
	gone func() bool

	grown bool // the pipe has been grown (see growPipe)

	// mid says stdin holds the start of a message whose end has not
	// been written: the last write ended on a non-final piece, or
	// failed part-way through.
	mid     bool
	written int64 // bytes written, to tell a failed write that wrote some
}

// bigPipe is the capacity a pipe that fills up is grown to.
const bigPipe = 1 << 20

// growPipe raises the capacity of a pipe that turned out to carry a stream
// (a write found it full, a read found it full) from Linux's 64 KiB to
// bigPipe, so a stream moves in fewer, larger system calls and wake-ups.
// Only such pipes grow: the kernel caps pipe memory per user (64 MiB by
// default, /proc/sys/fs/pipe-user-pages-soft) and past it gives new pipes a
// single page, so idle sessions must not spend it. Failure is harmless.
func growPipe(fd uintptr) {
	_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, bigPipe)
}

// stdinPatience is how often a write blocked on a full stdin looks up to
// see whether the client is still there.
const stdinPatience = 500 * time.Millisecond

// errClientGone abandons a write to stdin because the client is gone.
var errClientGone = errors.New("client gone while the child was not reading stdin")

func newStdinWriter(f *os.File, enc framing.Encoder) (*stdinWriter, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &stdinWriter{f: f, rc: rc, enc: enc}, nil
}

// write frames and writes pieces, blocking while the pipe is full: that is
// the backpressure that stops the bridge reading the socket.
func (s *stdinWriter) write(pieces []framing.Piece) error {
	if len(pieces) == 0 {
		return nil
	}
	before := s.written
	err := writeFramed(pieces, s.enc, s.writev)
	switch {
	case err == nil:
		s.mid = !pieces[len(pieces)-1].Final
	case s.written != before:
		s.mid = true // cut somewhere in the batch; say so, to be safe
	}
	return err
}

// writeFramed frames pieces with enc and hands write the vectors, prefix,
// data and suffix of up to maxBatch pieces at a time, so the data goes out
// without a copy and in as few system calls as the batch allows. Both
// directions of a session use it: to the child with its stdio framing, to
// the client with wsFrames.
func writeFramed(pieces []framing.Piece, enc framing.Encoder, write func(iov [][]byte) error) error {
	b := batchPool.Get().(*batch)
	defer batchPool.Put(b)
	for len(pieces) > 0 {
		n := min(len(pieces), maxBatch)
		hdr, iov := b.hdr[:0], b.iov[:0]
		for _, p := range pieces[:n] {
			start := len(hdr)
			hdr = enc.AppendPrefix(hdr, p)
			if len(hdr) > start {
				iov = append(iov, hdr[start:])
			}
			if len(p.Data) > 0 {
				iov = append(iov, p.Data)
			}
			if suf := enc.Suffix(p); len(suf) > 0 {
				iov = append(iov, suf)
			}
		}
		if err := write(iov); err != nil {
			return err
		}
		pieces = pieces[n:]
	}
	return nil
}

// writev writes all of iov, waiting for the pipe to drain as needed.
func (s *stdinWriter) writev(iov [][]byte) error {
	for len(iov) > 0 {
		if s.gone != nil {
			_ = s.f.SetWriteDeadline(time.Now().Add(stdinPatience))
		}
		var n int
		var werr error
		err := s.rc.Write(func(fd uintptr) bool {
			for {
				n, werr = unix.Writev(int(fd), iov)
				if werr != unix.EINTR {
					break
				}
			}
			if werr == unix.EAGAIN && !s.grown {
				s.grown = true
				growPipe(fd)
			}
			return werr != unix.EAGAIN
		})
		if errors.Is(err, os.ErrDeadlineExceeded) && s.gone != nil && !s.gone() {
			continue // still there: keep waiting
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errClientGone
		}
		if err != nil {
			return err
		}
		if werr != nil {
			return werr
		}
		s.written += int64(n)
		// Skip what was written; a partly written slice stays in front.
		for n > 0 && len(iov) > 0 {
			if n < len(iov[0]) {
				iov[0] = iov[0][n:]
				n = 0
				break
			}
			n -= len(iov[0])
			iov = iov[1:]
		}
		for len(iov) > 0 && len(iov[0]) == 0 {
			iov = iov[1:]
		}
	}
	return nil
}

// isBrokenPipe reports whether err says the child no longer reads stdin.
func isBrokenPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed)
}
