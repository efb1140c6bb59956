package wstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Options says how to dial and upgrade. The zero value asks for "/" with a
// valid handshake and nothing more.
type Options struct {
	Path   string   // request target; "" is "/"
	Header []string // extra header lines ("Name: value"), written as given, so they may be malformed on purpose
	Origin string   // an Origin header, when not ""
	Host   string   // the Host header; "" is the address dialled
	// RcvBuf, when not 0, sets the socket's receive buffer (SO_RCVBUF)
	// before it connects: a client slow to read fills it soon.
	RcvBuf int
	// ReadBuffer sizes the reader; 0 is bufio's default (4 KiB).
	ReadBuffer int
	// Timeout bounds the dial and the handshake together, and is the
	// Conn's Timeout; 0 is 10s.
	Timeout time.Duration
	// TLS, when set, makes the connection a TLS client's (wss://),
	// handshaken within Timeout before anything is written.
	TLS *tls.Config
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 10 * time.Second
	}
	return o.Timeout
}

// writeLimit bounds every write: a write blocked this long is a stuck
// server, not a slow one.
const writeLimit = 30 * time.Second

// Conn is a client's TCP connection, read through R.
type Conn struct {
	Conn net.Conn // for raw writes, deadlines and closing
	R    *bufio.Reader
	// Timeout is how long the Expect helpers wait.
	Timeout time.Duration
}

// New makes a Conn of an open connection, read with a buffer of size bytes
// (0: bufio's default).
func New(conn net.Conn, size int) *Conn {
	if size <= 0 {
		size = 4096
	}
	return &Conn{Conn: conn, R: bufio.NewReaderSize(conn, size), Timeout: 10 * time.Second}
}

// DialTCP opens a TCP connection to addr, with no handshake: for tests
// that write the request themselves.
func DialTCP(addr string, o Options) (*Conn, error) {
	d := net.Dialer{Timeout: o.timeout()}
	if o.RcvBuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.RcvBuf)
			})
			return errors.Join(err, serr)
		}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return open(conn, addr, o)
}

// open makes a Conn of a connection just dialled: a TLS client's first,
// when o.TLS is set.
func open(conn net.Conn, addr string, o Options) (*Conn, error) {
	if o.TLS != nil {
		tc := tls.Client(conn, o.TLS)
		_ = tc.SetDeadline(time.Now().Add(o.timeout()))
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		_ = tc.SetDeadline(time.Time{})
		conn = tc
	}
	c := New(conn, o.ReadBuffer)
	c.Timeout = o.timeout()
	return c, nil
}

// Dial opens a WebSocket to addr: DialTCP, then a handshake that must be
// answered 101 with the right Sec-WebSocket-Accept. The handshake's
// answer is parsed in place, not by net/http: the benchmark dials in a
// loop and must cost little.
func Dial(addr string, o Options) (*Conn, error) {
	deadline := time.Now().Add(o.timeout())
	c, err := DialTCP(addr, o)
	if err != nil {
		return nil, err
	}
	if err := c.handshake(addr, o, deadline); err != nil {
		c.Conn.Close()
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	return c, nil
}

func (c *Conn) handshake(addr string, o Options, deadline time.Time) error {
	_ = c.Conn.SetDeadline(deadline)
	defer c.Conn.SetDeadline(time.Time{})
	req, key := o.request(addr)
	if _, err := io.WriteString(c.Conn, req); err != nil {
		return err
	}
	status, err := c.R.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101 ")) {
		// Not the common case: let net/http read the answer, to say
		// what it was.
		status = bytes.Clone(status)
		resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(status), c.R)), nil)
		if err != nil {
			return fmt.Errorf("status %q: %w", bytes.TrimSpace(status), err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %q, want 101", resp.Status, body)
	}
	want := AcceptKey(key)
	var accept []byte
	for {
		line, err := c.R.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")) {
			accept = append(accept[:0], bytes.TrimSpace(value)...)
		}
	}
	if string(accept) != want {
		return fmt.Errorf("Sec-WebSocket-Accept %q, want %q", accept, want)
	}
	return nil
}

// request is the upgrade request o asks for, to addr, and its key.
func (o Options) request(addr string) (req, key string) {
	host := o.Host
	if host == "" {
		host = addr
	}
	path := o.Path
	if path == "" {
		path = "/"
	}
	header := o.Header
	if o.Origin != "" {
		header = append([]string{"Origin: " + o.Origin}, header...)
	}
	return UpgradeRequest(host, path, header...)
}

// UpgradeRequest returns a valid WebSocket handshake request for path with
// extra header lines ("Name: value", written as given, so they may be
// malformed on purpose), and the key it uses.
func UpgradeRequest(host, path string, header ...string) (req, key string) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key = base64.StdEncoding.EncodeToString(k[:])
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n")
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String(), key
}

// AcceptKey is the Sec-WebSocket-Accept value for key (RFC 6455 4.2.2).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Upgrade sends the upgrade request o asks for and reads the answer. For
// any status but 101 it reads the body too (into the response's Body); for
// 101 it checks Sec-WebSocket-Accept.
func (c *Conn) Upgrade(o Options) (*http.Response, error) {
	req, key := o.request(c.Conn.RemoteAddr().String())
	return c.Request(req, key)
}

// Request writes a raw request and reads the response, within Timeout.
// key, when not empty, is the Sec-WebSocket-Key whose accept value a 101
// must carry. For any status but 101 the body is read into the response.
func (c *Conn) Request(req, key string) (*http.Response, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(c.Timeout))
	defer c.Conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.Conn, req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key); key != "" && got != want {
		return resp, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return resp, nil
}

// write writes b within writeLimit.
func (c *Conn) write(b []byte) error {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(writeLimit))
	defer c.Conn.SetWriteDeadline(time.Time{})
	_, err := c.Conn.Write(b)
	return err
}

// WriteFrame writes one masked frame.
func (c *Conn) WriteFrame(fin bool, op byte, payload []byte) error {
	return c.write(AppendFrame(nil, Frame{Fin: fin, Op: op, Payload: payload}))
}

// WriteFrames writes frames in one write.
func (c *Conn) WriteFrames(frames ...Frame) error {
	var b []byte
	for _, f := range frames {
		b = AppendFrame(b, f)
	}
	return c.write(b)
}

// WriteMessage writes one message of type op in frames of at most size
// bytes (one frame when size <= 0), all in one write.
func (c *Conn) WriteMessage(op byte, payload []byte, size int) error {
	return c.WriteFrames(Fragments(op, payload, size)...)
}

// Fragments cuts p into a message of type op, in frames of at most size
// bytes (one frame when size <= 0).
func Fragments(op byte, p []byte, size int) []Frame {
	if size <= 0 {
		size = len(p)
	}
	var fs []Frame
	for first := true; first || len(p) > 0; first = false {
		n := min(size, len(p))
		f := Frame{Op: OpContinuation, Payload: p[:n], Fin: n == len(p)}
		if first {
			f.Op = op
		}
		fs = append(fs, f)
		p = p[n:]
	}
	return fs
}

// WriteClose sends a close frame with code and reason.
func (c *Conn) WriteClose(code int, reason string) error {
	return c.WriteFrame(true, OpClose, ClosePayload(code, reason))
}

// WriteChunks writes b in writes of at most chunk bytes (one write when
// chunk <= 0), sleeping pause between them. TCP_NODELAY is on (Go's
// default), so each write leaves as its own segment.
func (c *Conn) WriteChunks(b []byte, chunk int, pause time.Duration) error {
	if chunk <= 0 {
		chunk = len(b)
	}
	for i := 0; len(b) > 0; i++ {
		if i > 0 && pause > 0 {
			time.Sleep(pause)
		}
		n := min(chunk, len(b))
		if err := c.write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
