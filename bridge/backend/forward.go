package backend

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// Options configures a Forwarder.
type Options struct {
	Addr string // the backend: "host:port" or "unix:/path"
	// Timeout is how long the backend may take to send its response
	// head, and then each read of the body (a long-polling CGI may take
	// that long before its first byte); 0: 60s, nginx's
	// proxy_read_timeout.
	Timeout time.Duration
	MaxBody int64  // a chunked request body, buffered; larger gets 413; 0: 1 MiB
	Header  []byte // header lines (each ending in CRLF) added to every answer
	Log     *slog.Logger
}

const (
	dialTimeout = 3 * time.Second
	maxIdle     = 4                // idle backend connections kept for reuse
	idleFor     = 30 * time.Second // how long one is kept
	maxHead     = 64 << 10         // largest response head taken
	bufSize     = 32 << 10
)

// Forwarder forwards requests to one backend. It is safe for concurrent
// use: each client connection forwards on its own goroutine, and no lock
// is held while talking to the backend, so a slow backend stalls only the
// requests waiting for it.
type Forwarder struct {
	opts          Options
	network, addr string
	dialer        net.Dialer

	mu   sync.Mutex
	idle []idleConn // oldest first
}

// ParseAddr splits a backend address into the network and address to
// dial: "host:port" over TCP, "unix:/path" a unix socket.
func ParseAddr(s string) (network, addr string, err error) {
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("%q: want unix:/absolute/path", s)
		}
		return "unix", p, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", "", fmt.Errorf("%q: want HOST:PORT (e.g. 127.0.0.1:8081) or unix:/path", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q: port %q is not 1 to 65535", s, port)
	}
	return "tcp", s, nil
}

// New returns a Forwarder to opts.Addr; it dials nothing yet.
func New(opts Options) (*Forwarder, error) {
	network, addr, err := ParseAddr(opts.Addr)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Forwarder{opts: opts, network: network, addr: addr, dialer: net.Dialer{Timeout: dialTimeout}}, nil
}

// exchange is one request on its way: the client's connection and what
// was decided about it.
type exchange struct {
	f      *Forwarder
	conn   net.Conn
	req    *http1.Request
	line   string // the request line, for the log
	buf    []byte
	client *clientSide
	// keep: the client's connection may carry another request, as far as
	// the request goes (the response may still end it).
	keep bool
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Forward sends req (its head parsed; extra, the bytes read after it) to
// the backend and relays the response on conn. It reports whether conn
// may carry another request.
func (f *Forwarder) Forward(conn net.Conn, req *http1.Request, extra []byte) (keep bool) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	x := &exchange{f: f, conn: conn, req: req, buf: *bp, line: req.Method + " " + req.Target + " " + req.Proto,
		// The server reads the next request from its own buffer,
		// where extra still is: extra may be a pipelined request,
		// but not a body.
		keep: req.ProtoAtLeast(1, 1) && !req.Close && (len(extra) == 0 || !req.HasBody())}
	if req.Chunked {
		if !chunkedLast(req.Fields) {
			// RFC 9112 6.3: the body's length is unknown.
			return x.answer(http.StatusBadRequest, "malformed request: Transfer-Encoding does not end in chunked")
		}
		if req.ContentLength >= 0 {
			// RFC 9112 6.1: a proxy in front may have framed it
			// by the length; what follows is not surely a request.
			x.keep = false
		}
	}
	switch {
	case req.BadLength:
		return x.answer(http.StatusBadRequest, "malformed request: bad Content-Length")
	case req.Method == "CONNECT":
		// A tunnel is no request a web server behind answers.
		return x.answer(http.StatusMethodNotAllowed, "405 Method Not Allowed: CONNECT")
	}
	if req.HasBody() {
		x.expect()
	}
	var body []byte // a chunked body, whole
	if req.Chunked {
		var err error
		if body, err = x.readChunked(extra); err != nil {
			if errors.Is(err, errTooLarge) {
				return x.answer(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", f.opts.MaxBody))
			}
			f.opts.Log.Info("backend: request body not read", "request", x.line, "remote", req.Peer.RemoteString(), "err", err)
			return x.answer(http.StatusBadRequest, "malformed request body")
		}
	}
	head := x.requestHead(body)
	retry := idempotent(req.Method) && !(req.ContentLength > 0 && !req.Chunked)
	for attempt := 0; ; attempt++ {
		bc, reused, err := f.get(attempt > 0)
		if err != nil {
			f.opts.Log.Warn("backend: unreachable", "backend", f.opts.Addr, "request", x.line, "remote", req.Peer.RemoteString(), "err", err)
			return x.answer(http.StatusBadGateway, "502 Bad Gateway: the web server at "+f.opts.Addr+" is not answering ("+errText(err)+")")
		}
		_ = bc.SetWriteDeadline(time.Now().Add(f.opts.Timeout))
		_, err = bc.Write(append(head, body...))
		if err == nil {
			var sent []byte
			if req.ContentLength > 0 && !req.Chunked {
				sent = extra
			}
			x.client = startClient(x, bc, sent)
			var again bool
			keep, again = x.relay(bc, reused && retry)
			if !again {
				return keep
			}
		} else {
			_ = bc.Close()
			if !reused || !retry {
				f.opts.Log.Warn("backend: request not sent", "backend", f.opts.Addr, "request", x.line, "err", err)
				return x.answer(http.StatusBadGateway, "502 Bad Gateway: the web server at "+f.opts.Addr+" took no request ("+errText(err)+")")
			}
		}
		f.opts.Log.Debug("backend: a kept connection failed; retrying on a new one", "request", x.line)
	}
}

// chunkedLast reports whether chunked is the last transfer coding the
// request's Transfer-Encoding fields list.
func chunkedLast(fields [][2]string) bool {
	last := ""
	for _, f := range fields {
		if strings.EqualFold(f[0], "Transfer-Encoding") {
			last = strings.TrimSpace(f[1][strings.LastIndexByte(f[1], ',')+1:])
		}
	}
	return strings.EqualFold(last, "chunked")
}

// relay reads the backend's answer on bc and relays it. again says bc
// failed before its first byte and the request may be sent again.
func (x *exchange) relay(bc net.Conn, mayRetry bool) (keep, again bool) {
	f, req := x.f, x.req
	// The whole head within the timeout, then each read of the body.
	tr := &timedReader{Conn: bc, timeout: f.opts.Timeout, until: time.Now().Add(f.opts.Timeout)}
	br := bufio.NewReaderSize(tr, bufSize)
	resp, got, err := readResponse(br)
	tr.until = time.Time{}
	if err != nil {
		gone := x.client.stop()
		_ = bc.Close()
		var ne net.Error
		switch {
		case gone:
			f.opts.Log.Info("backend: client went away before the response", "request", x.line, "remote", req.Peer.RemoteString())
			return false, false
		case mayRetry && got == 0 && !(errors.As(err, &ne) && ne.Timeout()):
			return false, true
		case errors.As(err, &ne) && ne.Timeout():
			f.opts.Log.Warn("backend: no response in time", "backend", f.opts.Addr, "request", x.line, "timeout", f.opts.Timeout)
			return x.answer(http.StatusGatewayTimeout, fmt.Sprintf("504 Gateway Timeout: the web server at %s sent no response within %s", f.opts.Addr, f.opts.Timeout)), false
		default:
			f.opts.Log.Warn("backend: bad response", "backend", f.opts.Addr, "request", x.line, "err", err)
			return x.answer(http.StatusBadGateway, "502 Bad Gateway: the web server at "+f.opts.Addr+" sent no valid response ("+errText(err)+")"), false
		}
	}
	framing := frameNone
	switch {
	case !resp.HasBody(req.Method):
	case resp.ContentLength >= 0:
		framing = frameLength
	case resp.Chunked && req.ProtoAtLeast(1, 1):
		framing = frameChunked
	case resp.Chunked:
		framing = frameDechunk
	default:
		framing = frameClose
	}
	keep = x.keep && framing != frameDechunk && framing != frameClose
	_ = x.conn.SetWriteDeadline(time.Now().Add(f.opts.Timeout))
	if _, err := x.conn.Write(x.responseHead(resp, framing, keep)); err != nil {
		x.client.stop()
		_ = bc.Close()
		return false, false
	}
	err = x.copyBody(br, resp, framing)
	gone := x.client.stop()
	if err != nil || gone {
		_ = bc.Close()
		why := "backend: response cut"
		if gone || errors.Is(err, errClientWrite) {
			why = "backend: client went away during the response"
		}
		f.opts.Log.Info(why, "request", x.line, "remote", req.Peer.RemoteString(), "err", err)
		return false, false
	}
	if resp.Close || framing == frameClose || br.Buffered() > 0 || !x.client.bodyDone {
		_ = bc.Close()
	} else {
		f.put(bc)
	}
	return keep && x.client.bodyDone, false
}

// readResponse reads a response head, skipping interim 1xx answers (the
// bridge answers Expect: 100-continue itself). got is how many bytes came.
func readResponse(br *bufio.Reader) (resp *http1.Response, got int, err error) {
	for {
		var head []byte
		for {
			line, err := br.ReadSlice('\n')
			got += len(line)
			if len(head)+len(line) > maxHead {
				return nil, got, errors.New("response head too large")
			}
			head = append(head, line...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				if errors.Is(err, io.EOF) && got > 0 {
					err = io.ErrUnexpectedEOF
				}
				return nil, got, err
			}
			if len(head) == len(line) && (len(line) == 1 || string(line) == "\r\n") {
				head = head[:0] // a stray line end before the status line
				continue
			}
			if string(line) == "\n" || string(line) == "\r\n" {
				break
			}
		}
		resp, err := http1.ParseResponse(head)
		if err != nil {
			return nil, got, err
		}
		switch {
		case resp.Status == http.StatusSwitchingProtocols:
			// The bridge never forwards Upgrade: a switch is a fault.
			return nil, got, errors.New("101 Switching Protocols unasked")
		case resp.Status < 200:
			continue
		}
		return resp, got, nil
	}
}

// expect answers Expect: 100-continue itself: the body is streamed to the
// backend anyway, and small servers do not send 100.
func (x *exchange) expect() {
	for _, fl := range x.req.Fields {
		if strings.EqualFold(fl[0], "Expect") && strings.EqualFold(fl[1], "100-continue") && x.req.ProtoAtLeast(1, 1) {
			_ = x.conn.SetWriteDeadline(time.Now().Add(x.f.opts.Timeout))
			_, _ = x.conn.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
			return
		}
	}
}

// answer writes the bridge's own short answer, which closes conn.
func (x *exchange) answer(status int, reason string) bool {
	_ = x.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _ = x.conn.Write(http1.AppendText(nil, status, reason, false, x.f.opts.Header))
	return false
}

// hopByHop are the fields that describe one connection, not the message
// (RFC 9110 7.6.1), and Content-Length, which the framing sets.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"}

// ownRequest are the request fields the bridge writes itself, or answers.
var ownRequest = []string{"Host", "Expect",
	// The client is not a trusted proxy: what it says of itself goes.
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"}

// dropped reports whether a field named name is not relayed: one of
// names, or one a Connection field of fields names.
func dropped(name string, fields [][2]string, names ...[]string) bool {
	for _, list := range names {
		for _, h := range list {
			// A CGI server maps '_' and '-' alike (RFC 3875 4.1.18):
			// X_Forwarded_For would pass for X-Forwarded-For.
			if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), h) {
				return true
			}
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f[0], "Connection") && http1.HasToken(f[1], name) {
			return true
		}
	}
	return false
}

// requestHead is the head sent to the backend; body is a chunked
// request's body, whole.
func (x *exchange) requestHead(body []byte) []byte {
	req := x.req
	target := req.Target
	if req.Absolute {
		target = req.RawPath
		if req.Query != "" || strings.Contains(req.Target, "?") {
			target += "?" + req.Query
		}
	}
	host := req.Host
	if host == "" && req.Peer.Local != nil {
		host = req.Peer.Local.String()
	}
	b := make([]byte, 0, 512)
	b = append(b, req.Method+" "+target+" HTTP/1.1\r\nHost: "+host+"\r\n"...)
	for _, f := range req.Fields {
		if !dropped(f[0], req.Fields, hopByHop, ownRequest) {
			b = append(b, f[0]+": "+f[1]+"\r\n"...)
		}
	}
	switch {
	case req.Chunked:
		b = append(b, "Content-Length: "+strconv.Itoa(len(body))+"\r\n"...)
	case req.ContentLength >= 0:
		b = append(b, "Content-Length: "+strconv.FormatInt(req.ContentLength, 10)+"\r\n"...)
	}
	// Keep-alive is HTTP/1.1's default; boa, an HTTP/1.0 server, keeps
	// a connection only when asked.
	b = append(b, "Connection: keep-alive\r\n"...)
	ip, _ := req.Peer.RemoteHostPort()
	proto := "http"
	if req.Peer.Secure {
		proto = "https"
	}
	b = append(b, "X-Forwarded-For: "+ip+"\r\nX-Forwarded-Proto: "+proto+"\r\n"...)
	if req.Host != "" {
		b = append(b, "X-Forwarded-Host: "+req.Host+"\r\n"...)
	}
	return append(b, "\r\n"...)
}

// How a response body goes to the client.
type framing int

const (
	frameNone    framing = iota // no body
	frameLength                 // Content-Length, copied exactly
	frameChunked                // chunked, passed through
	frameDechunk                // chunked from the backend, plain to an HTTP/1.0 client
	frameClose                  // until the backend closes; then the client's connection closes too
)

// responseHead is the head relayed to the client.
func (x *exchange) responseHead(resp *http1.Response, fr framing, keep bool) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(resp.Status), 10)
	b = append(b, " "+resp.Reason+"\r\n"...)
	for _, f := range resp.Fields {
		if !dropped(f[0], resp.Fields, hopByHop) {
			b = append(b, f[0]+": "+f[1]+"\r\n"...)
		}
	}
	switch {
	case fr == frameChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case resp.ContentLength >= 0 && !resp.Chunked:
		// Also a HEAD's or a 304's: it tells the size of the body
		// the request did not ask for.
		b = append(b, "Content-Length: "+strconv.FormatInt(resp.ContentLength, 10)+"\r\n"...)
	}
	b = append(b, x.f.opts.Header...)
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// errText is err for a person: without the "dial tcp" of net's errors.
func errText(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return err.Error()
}

func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// timedReader reads with a deadline: until when set, else a fresh one
// for each read.
type timedReader struct {
	net.Conn
	timeout time.Duration
	until   time.Time
}

func (r *timedReader) Read(p []byte) (int, error) {
	d := r.until
	if d.IsZero() {
		d = time.Now().Add(r.timeout)
	}
	_ = r.Conn.SetReadDeadline(d)
	return r.Conn.Read(p)
}

// readerFrom is bytes then r.
func readerFrom(b []byte, r io.Reader) io.Reader {
	if len(b) == 0 {
		return r
	}
	return io.MultiReader(bytes.NewReader(b), r)
}
