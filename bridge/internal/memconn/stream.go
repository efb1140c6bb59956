package memconn

import (
	"os"
	"sync"
	"time"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
)

// stream is a bounded byte pipe with write deadlines: the server writes
// frames into it, the Peer reads them out. A full stream is what a slow
// client looks like.
type stream struct {
	mu       sync.Mutex
	buf      []byte
	limit    int
	closed   bool          // the reader is gone: writes fail
	eof      bool          // the writer is done: reads end once buf is empty
	changed  chan struct{} // closed and replaced at every change
	deadline time.Time     // of writes
}

func newStream(limit int) *stream { return &stream{limit: limit, changed: make(chan struct{})} }

// signal wakes whoever waits for a change; mu is held.
func (s *stream) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// write appends p. With wait it waits for room until all is written or
// the deadline passes; without, it takes what fits and answers
// poll.ErrWouldBlock for the rest.
func (s *stream) write(p []byte, wait bool) (int, error) {
	n := 0
	for {
		s.mu.Lock()
		if s.closed || s.eof {
			s.mu.Unlock()
			return n, transport.ErrClosed
		}
		if room := s.limit - len(s.buf); room > 0 && n < len(p) {
			k := min(room, len(p)-n)
			s.buf = append(s.buf, p[n:n+k]...)
			n += k
			s.signal()
		}
		if n == len(p) {
			s.mu.Unlock()
			return n, nil
		}
		if !wait {
			s.mu.Unlock()
			return n, poll.ErrWouldBlock
		}
		ch, dl := s.changed, s.deadline
		s.mu.Unlock()
		if err := waitUntil(ch, dl); err != nil {
			return n, err
		}
	}
}

// read takes what the stream holds, waiting up to timeout for something;
// it reports false at the end of the stream or on timeout.
func (s *stream) read(timeout time.Duration) ([]byte, bool) {
	end := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		if len(s.buf) > 0 {
			b := s.buf
			s.buf = nil
			s.signal()
			s.mu.Unlock()
			return b, true
		}
		if s.eof || s.closed {
			s.mu.Unlock()
			return nil, false
		}
		ch := s.changed
		s.mu.Unlock()
		if waitUntil(ch, end) != nil {
			return nil, false
		}
	}
}

func (s *stream) setDeadline(t time.Time) {
	s.mu.Lock()
	s.deadline = t
	s.signal()
	s.mu.Unlock()
}

// end marks the stream: eof (no more writes) or closed (no more reads).
func (s *stream) end(closed bool) {
	s.mu.Lock()
	if closed {
		s.closed = true
	} else {
		s.eof = true
	}
	s.signal()
	s.mu.Unlock()
}

// waitUntil waits for ch, or fails once deadline (zero: none) passes.
func waitUntil(ch <-chan struct{}, deadline time.Time) error {
	if deadline.IsZero() {
		<-ch
		return nil
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}
