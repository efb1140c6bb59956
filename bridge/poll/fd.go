package poll

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock says a read or write found nothing to do without waiting:
// no data to read, no room to write.
var ErrWouldBlock = errors.New("would block")

// readFD reads once from fd into p, retrying EINTR.
func readFD(fd uintptr, p []byte) (int, error) {
	for {
		n, err := unix.Read(int(fd), p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// WritevFD writes iov to fd once with writev(2), retrying EINTR; EAGAIN
// is returned as it is, for the caller to wait or not.
func WritevFD(fd uintptr, iov [][]byte) (int, error) {
	for {
		n, err := unix.Writev(int(fd), iov)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// Writev writes iov to rc's descriptor. With wait it waits for room (in
// the runtime's poller, under the write deadline) until part is written
// and returns what was; without, it never waits and returns
// ErrWouldBlock, with what was taken, unless all was. onFull, when not
// nil, runs once at the first EAGAIN, with the descriptor (a pipe grows
// there).
func Writev(rc syscall.RawConn, iov [][]byte, wait bool, onFull func(fd uintptr)) (int, error) {
	want := 0
	for _, b := range iov {
		want += len(b)
	}
	fw := fdWrites.Get().(*fdWrite)
	fw.iov, fw.wait, fw.onFull = iov, wait, onFull
	err := rc.Write(fw.fn)
	n, werr := fw.n, fw.err
	fw.iov, fw.onFull, fw.err = nil, nil, nil
	fdWrites.Put(fw)
	switch {
	case err != nil:
		return 0, err
	case werr == unix.EAGAIN:
		return 0, ErrWouldBlock
	case werr != nil:
		return 0, werr
	case n < want && !wait:
		return n, ErrWouldBlock
	}
	return n, nil
}

// fdWrite is one Writev, pooled with its method bound once so that
// RawConn.Write is handed a func that already exists: a closure, and the
// results it captured, would be allocated at every write.
type fdWrite struct {
	fn     func(fd uintptr) bool // do
	iov    [][]byte
	wait   bool
	onFull func(fd uintptr)
	n      int
	err    error
}

var fdWrites = sync.Pool{New: func() any {
	w := new(fdWrite)
	w.fn = w.do
	return w
}}

func (w *fdWrite) do(fd uintptr) bool {
	w.n, w.err = WritevFD(fd, w.iov)
	if w.err == unix.EAGAIN && w.onFull != nil {
		w.onFull(fd)
		w.onFull = nil
	}
	return w.err != unix.EAGAIN || !w.wait
}

// Advance drops the first n written bytes from iov and returns what is
// left to write: a partly written vector stays in front, shortened.
func Advance(iov [][]byte, n int) [][]byte {
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
	return iov
}

// ReadHeld reads what f holds now, without waiting: io.EOF when it holds
// nothing, whether or not a writer still has it open.
func ReadHeld(f *os.File, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = readFD(fd, p)
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == unix.EAGAIN, rerr == nil && n == 0:
		return 0, io.EOF
	case rerr != nil:
		return 0, rerr
	}
	return n, nil
}

// PollNow returns the poll(2) events of interest on rc's descriptor
// (errors and hang-ups always), without waiting and without reading.
func PollNow(rc syscall.RawConn, events int16) int16 {
	var revents int16
	_ = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
			revents = fds[0].Revents
		}
	})
	return revents
}
