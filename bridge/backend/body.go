package backend

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

var (
	errTooLarge    = errors.New("request body too large")
	errChunk       = errors.New("malformed chunked body")
	errClientWrite = errors.New("client write failed")
)

// clientSide is the client's connection while the backend answers: a
// goroutine streams the request body to the backend, then watches for the
// client going away, which closes the backend connection (a long-poll
// CGI need not run on for nobody).
type clientSide struct {
	conn, bc net.Conn
	timeout  time.Duration

	mu      sync.Mutex
	stopped bool
	done    chan struct{}

	// Set by the goroutine, read once done is closed.
	bodyDone bool // the request body, if any, went to the backend whole
	gone     bool // the client went away, or stalled mid-body
}

// startClient starts the goroutine; sent is the start of a Content-Length
// body, read with the head.
func startClient(x *exchange, bc net.Conn, sent []byte) *clientSide {
	c := &clientSide{conn: x.conn, bc: bc, timeout: x.f.opts.Timeout, done: make(chan struct{})}
	go c.run(x.req.ContentLength, x.req.Chunked, sent)
	return c
}

func (c *clientSide) run(length int64, chunked bool, sent []byte) {
	defer close(c.done)
	if length > 0 && !chunked {
		sent = sent[:min(int64(len(sent)), length)]
		src := &clientReader{c: c}
		bp := bufPool.Get().(*[]byte)
		n, err := io.CopyBuffer(&timedWriter{c.bc, c.timeout}, io.LimitReader(readerFrom(sent, src), length), *bp)
		bufPool.Put(bp)
		if n < length || err != nil {
			if src.err != nil && !c.isStopped() {
				c.gone = true
				_ = c.bc.Close() // the backend sees the body cut
			}
			return
		}
	}
	c.bodyDone = true
	if !c.deadline(time.Time{}) {
		return
	}
	// A wait cut but not by stop is the server's shutdown (see
	// Server.closeAll): the backend's answer is not waited for either.
	if peekGone(c.conn) && !c.isStopped() {
		c.gone = true
		_ = c.bc.Close()
	}
}

// peekGone waits until the client's connection is readable and reports
// whether it ended (EOF, an error, its read deadline), without taking a
// byte of what the client sent: a next request, sent as soon as the
// response arrived, stays for the server to read. A conn that is not a
// socket is not watched: false at once.
func peekGone(conn net.Conn) (left bool) {
	sc, isSock := conn.(syscall.Conn)
	if !isSock {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var one [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR):
			return false // not readable yet: wait
		case rerr != nil || n == 0:
			left = true
		}
		return true
	})
	return left || err != nil
}

// stop ends the goroutine and reports whether the client went away.
func (c *clientSide) stop() (gone bool) {
	c.mu.Lock()
	c.stopped = true
	_ = c.conn.SetReadDeadline(time.Unix(1, 0))
	_ = c.bc.SetWriteDeadline(time.Unix(1, 0)) // a backend that reads no more of the body
	c.mu.Unlock()
	<-c.done
	_ = c.conn.SetReadDeadline(time.Time{})
	return c.gone
}

func (c *clientSide) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// deadline sets the client's read deadline, unless stop has begun.
func (c *clientSide) deadline(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		_ = c.conn.SetReadDeadline(t)
	}
	return !c.stopped
}

// clientReader reads the client's connection, each read within the
// timeout; err is the client's, not the backend's.
type clientReader struct {
	c   *clientSide
	err error
}

func (r *clientReader) Read(p []byte) (int, error) {
	if !r.c.deadline(time.Now().Add(r.c.timeout)) {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := r.c.conn.Read(p)
	if err != nil {
		r.err = err
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the body is not whole
		}
	}
	return n, err
}

// timedWriter writes with a fresh deadline for each write.
type timedWriter struct {
	net.Conn
	timeout time.Duration
}

func (w *timedWriter) Write(p []byte) (int, error) {
	_ = w.Conn.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.Conn.Write(p)
}

// readChunked reads a chunked request body whole (extra: its start, read
// with the head), up to MaxBody.
func (x *exchange) readChunked(extra []byte) ([]byte, error) {
	defer func() { _ = x.conn.SetReadDeadline(time.Time{}) }()
	br := bufio.NewReaderSize(readerFrom(extra, &timedReader{Conn: x.conn, timeout: x.f.opts.Timeout}), 4<<10)
	var body bytes.Buffer
	for {
		size, err := chunkSize(br)
		if err != nil {
			return nil, err
		}
		if size == 0 {
			break
		}
		if int64(body.Len())+size > x.f.opts.MaxBody {
			return nil, errTooLarge
		}
		if _, err := io.CopyN(&body, br, size); err != nil {
			return nil, err
		}
		if err := chunkEnd(br); err != nil {
			return nil, err
		}
	}
	if err := skipTrailers(br); err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		x.keep = false // a next request, read into this buffer: lost
	}
	return body.Bytes(), nil
}

// chunkSize reads a chunk's size line (RFC 9112 7.1), extensions ignored.
func chunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
			err = errChunk
		}
		return 0, err
	}
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, errChunk
	}
	n, err := strconv.ParseInt(string(line), 16, 64)
	if err != nil || line[0] == '+' || line[0] == '-' {
		return 0, errChunk
	}
	return n, nil
}

// chunkEnd reads the line end after a chunk's data.
func chunkEnd(br *bufio.Reader) error {
	b, err := br.ReadByte()
	if err == nil && b == '\r' {
		b, err = br.ReadByte()
	}
	if err == nil && b != '\n' {
		err = errChunk
	}
	if errors.Is(err, io.EOF) {
		err = errChunk
	}
	return err
}

// skipTrailers reads the trailer section after the last chunk; its fields
// are not relayed (nor is the Trailer field that announces them).
func skipTrailers(br *bufio.Reader) error {
	for total := 0; total < maxHead; {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
				err = errChunk
			}
			return err
		}
		total += len(line)
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
	return errChunk
}

// copyBody relays the response body as it arrives: each read from the
// backend is written to the client at once.
func (x *exchange) copyBody(br *bufio.Reader, resp *http1.Response, fr framing) error {
	switch fr {
	case frameLength:
		return x.copyN(br, resp.ContentLength, nil, nil)
	case frameClose:
		for {
			n, err := br.Read(x.buf)
			if n > 0 {
				if werr := x.write(x.buf[:n]); werr != nil {
					return werr
				}
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	case frameChunked, frameDechunk:
		for {
			size, err := chunkSize(br)
			if err != nil {
				return err
			}
			if size == 0 {
				if err := skipTrailers(br); err != nil {
					return err
				}
				if fr == frameChunked {
					return x.write([]byte("0\r\n\r\n"))
				}
				return nil
			}
			var pre, post []byte
			if fr == frameChunked {
				pre, post = []byte(strconv.FormatInt(size, 16)+"\r\n"), []byte("\r\n")
			}
			if err := x.copyN(br, size, pre, post); err != nil {
				return err
			}
			if err := chunkEnd(br); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyN relays n bytes of br, pre before the first and post after the
// last, in the same writes.
func (x *exchange) copyN(br *bufio.Reader, n int64, pre, post []byte) error {
	for n > 0 {
		b := append(x.buf[:0], pre...)
		pre = nil
		room := int64(len(x.buf) - len(b) - len(post))
		m, err := br.Read(x.buf[len(b) : int64(len(b))+min(n, room)])
		b = x.buf[:len(b)+m]
		n -= int64(m)
		if n == 0 {
			b = append(b, post...)
		}
		if len(b) > 0 {
			if werr := x.write(b); werr != nil {
				return werr
			}
		}
		if err != nil && n > 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// write writes b to the client within the timeout.
func (x *exchange) write(b []byte) error {
	_ = x.conn.SetWriteDeadline(time.Now().Add(x.f.opts.Timeout))
	if _, err := x.conn.Write(b); err != nil {
		return errors.Join(errClientWrite, err)
	}
	return nil
}

// get returns an idle connection to the backend (reused: true) or, when
// there is none or fresh is asked, a new one.
func (f *Forwarder) get(fresh bool) (c net.Conn, reused bool, err error) {
	for !fresh {
		f.mu.Lock()
		n := len(f.idle)
		if n == 0 {
			f.mu.Unlock()
			break
		}
		i := f.idle[n-1] // the newest: the least likely to be closed
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		i.timer.Stop()
		if quiet(i.conn) {
			return i.conn, true, nil
		}
		// Closed by the backend, or holding bytes no request asked
		// for: a request sent there would fail unretried (a POST) or
		// be answered with them.
		_ = i.conn.Close()
	}
	c, err = f.dialer.Dial(f.network, f.addr)
	return c, false, err
}

// quiet reports whether an idle connection has nothing to read: no
// bytes, no end. A conn that is not a socket is taken as quiet.
func quiet(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var one [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(rerr, syscall.EAGAIN)
		return true // never wait
	})
	return ok && err == nil
}

// idleConn is a backend connection kept for reuse, closed by its timer.
type idleConn struct {
	conn  net.Conn
	timer *time.Timer
}

// put keeps c for reuse, up to maxIdle connections for up to idleFor.
func (f *Forwarder) put(c net.Conn) {
	_ = c.SetDeadline(time.Time{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.idle) >= maxIdle {
		old := f.idle[0]
		f.idle = f.idle[1:]
		old.timer.Stop()
		_ = old.conn.Close()
	}
	f.idle = append(f.idle, idleConn{conn: c, timer: time.AfterFunc(idleFor, func() { f.expire(c) })})
}

// expire closes c if it is still idle.
func (f *Forwarder) expire(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ic := range f.idle {
		if ic.conn == c {
			f.idle = append(f.idle[:i], f.idle[i+1:]...)
			_ = c.Close()
			return
		}
	}
}

// Close closes the idle backend connections.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ic := range f.idle {
		ic.timer.Stop()
		_ = ic.conn.Close()
	}
	f.idle = nil
}
