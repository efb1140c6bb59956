package stdio

import (
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/framing"
)

// Writer frames message pieces for a child's stdin and writes each batch
// with writev: the data goes from the socket's read buffer to the pipe
// without a copy. One goroutine at a time writes.
type Writer struct {
	f   *os.File
	rc  syscall.RawConn
	enc framing.Encoder

	// Gone, when set, is asked every Patience while a write waits for a
	// child that does not read: a true answer abandons the write with
	// ErrClientGone.
	Gone func() bool

	grown  bool          // the pipe has been grown (see GrowPipe)
	onFull func(uintptr) // grows the pipe at its first EAGAIN; made once, not per write

	// Mid says stdin holds the start of a message whose end has not
	// been written: the last write ended on a non-final piece, or failed
	// part-way through.
	Mid     bool
	written int64 // bytes written, to tell a failed write that wrote some
}

// Patience is how often a write blocked on a full stdin looks up to see
// whether the client is still there.
const Patience = 500 * time.Millisecond

// ErrClientGone abandons a write to stdin because the client is gone.
var ErrClientGone = errors.New("client gone while the child was not reading stdin")

// NewWriter returns a Writer of f, the child's stdin, framing with enc.
func NewWriter(f *os.File, enc framing.Encoder) (*Writer, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &Writer{f: f, rc: rc, enc: enc}
	w.onFull = func(fd uintptr) {
		if !w.grown {
			w.grown = true
			GrowPipe(fd)
		}
	}
	return w, nil
}

// Write frames and writes pieces, blocking while the pipe is full: that is
// the backpressure that stops the bridge reading the socket.
func (w *Writer) Write(pieces []framing.Piece) error {
	if len(pieces) == 0 {
		return nil
	}
	before := w.written
	err := framing.WriteVectors(pieces, w.enc, w.writev)
	switch {
	case err == nil:
		w.Mid = !pieces[len(pieces)-1].Final
	case w.written != before:
		w.Mid = true // cut somewhere in the batch; say so, to be safe
	}
	return err
}

// writev writes all of iov, waiting for the pipe to drain as needed.
func (w *Writer) writev(iov [][]byte) error {
	for len(iov) > 0 {
		if w.Gone != nil {
			_ = w.f.SetWriteDeadline(time.Now().Add(Patience))
		}
		n, err := poll.Writev(w.rc, iov, true, w.onFull)
		if errors.Is(err, os.ErrDeadlineExceeded) && w.Gone != nil && !w.Gone() {
			continue // still there: keep waiting
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return ErrClientGone
		}
		if err != nil {
			return err
		}
		w.written += int64(n)
		iov = poll.Advance(iov, n)
	}
	return nil
}
