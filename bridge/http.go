//go:build !wsbridge_minimal

package bridge

import (
	"bufio"
	"bytes"
	_ "embed"
	"net"
	"net/http"
	"strconv"
	"time"
)

// plainHTTP answers, one at a time, the requests of a connection that are
// not WebSocket upgrades, with net/http's handlers (the demo page, static
// files, the console) but not its server: the server loop is the bridge's
// own (see Server.handle), which reads every request head itself, so an
// upgrade that follows plain requests on a kept-alive connection goes the
// same way as one on a fresh connection, and net/http's server (1.4 MB of
// a MIPS binary) is not linked in. The wsbridge_minimal build answers
// with fixed texts instead (http_minimal.go).
type plainHTTP struct{}

func (s *Server) newPlainHTTP() plainHTTP { return plainHTTP{} }

// answer serves the request whose head is head on conn and reports
// whether the connection may carry another request. A request with a body
// is answered without reading it, and the connection is then closed.
func (plainHTTP) answer(s *Server, conn net.Conn, head []byte, _ requestHead) (keep bool) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		s.respond(conn, http.StatusBadRequest, "malformed request", false)
		return false
	}
	req.RemoteAddr = conn.RemoteAddr().String()
	body := req.ContentLength != 0 || len(req.TransferEncoding) > 0
	w := &responseWriter{conn: conn, req: req, header: http.Header{},
		keep: !req.Close && req.ProtoAtLeast(1, 1) && !body}
	s.serveHTTP(w, req)
	w.finish()
	return w.keep && w.err == nil
}

// checkPlainHTTP reports an option this build cannot serve: none.
func checkPlainHTTP(Options) error { return nil }

// responseWriter is the http.ResponseWriter of one plain request: a
// response whose handler set Content-Length goes out as it is written;
// others are held up to respBuffer bytes and sent with a Content-Length,
// or, when longer, chunked.
type responseWriter struct {
	conn   net.Conn
	req    *http.Request
	header http.Header
	keep   bool // the connection stays open after this response

	status  int    // 0 until WriteHeader
	sent    bool   // the status line and header are out
	chunked bool   // the body goes out in chunks
	held    []byte // body held until the framing is known
	err     error  // the first write error: the connection is done
}

// respBuffer is how much of a body without a Content-Length is held to
// give it one.
const respBuffer = 16 << 10

// respTimeout bounds each write of a response to a client that does not
// read.
const respTimeout = time.Minute

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.err != nil {
		return 0, w.err
	}
	if !w.sent {
		if w.header.Get("Content-Length") == "" && len(w.held)+len(p) <= respBuffer {
			w.held = append(w.held, p...)
			return len(p), nil
		}
		// Chunks for HTTP/1.1; an HTTP/1.0 client reads to the close.
		w.chunked = w.header.Get("Content-Length") == "" && w.req.ProtoAtLeast(1, 1)
		w.sendHeader()
		w.writeBody(w.held)
		w.held = nil
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// finish completes the response once the handler has returned.
func (w *responseWriter) finish() {
	w.WriteHeader(http.StatusOK)
	if !w.sent {
		if w.header.Get("Content-Length") == "" && bodyAllowed(w.status) {
			w.header.Set("Content-Length", strconv.Itoa(len(w.held)))
		}
		w.sendHeader()
		w.writeBody(w.held)
		w.held = nil
	}
	if w.chunked {
		w.write([]byte("0\r\n\r\n"))
	}
}

func (w *responseWriter) sendHeader() {
	w.sent = true
	if w.chunked {
		w.header.Set("Transfer-Encoding", "chunked")
	}
	if !w.keep {
		w.header.Set("Connection", "close")
	}
	if w.header.Get("Date") == "" {
		w.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(w.status) + " " + http.StatusText(w.status) + "\r\n")
	_ = w.header.Write(&b)
	b.WriteString("\r\n")
	w.write(b.Bytes())
}

// writeBody writes p as body: nothing for HEAD or a status without one.
func (w *responseWriter) writeBody(p []byte) {
	if len(p) == 0 || w.req.Method == http.MethodHead || !bodyAllowed(w.status) {
		return
	}
	if w.chunked {
		w.write([]byte(strconv.FormatInt(int64(len(p)), 16) + "\r\n"))
		w.write(p)
		w.write([]byte("\r\n"))
		return
	}
	w.write(p)
}

func (w *responseWriter) write(p []byte) {
	if w.err != nil {
		return
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(respTimeout))
	_, w.err = w.conn.Write(p)
}

// bodyAllowed reports whether a response with status may have a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

//go:embed demo.html
var demoPage []byte

// serveHTTP answers every request that is not a WebSocket upgrade on a
// fresh connection: the demo page at "/", files of the static directory,
// the console for an endpoint's path, and otherwise a 426 that says what
// the path is for, or a 404 where no endpoint is (with a static
// directory, also where an endpoint at every path has no file).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	for _, h := range []http.Header{s.opts.Header, s.opts.HeaderHTTP} {
		for k, v := range h {
			w.Header()[k] = v
		}
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if s.opts.Demo && r.URL.Path == "/" && get {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(demoPage)
		return
	}
	ep, _, _, why := s.routes.lookup(r.URL.EscapedPath(), r.URL.Path)
	// With a static directory, a path with no file is the endpoint's only
	// where the endpoint was put: an endpoint at every path (or at "/")
	// would otherwise answer a browser's /favicon.ico with its 426.
	own := ep != nil && (ep.Path != "" && ep.Path != "/" || r.URL.Path == "/")
	if get && s.opts.StaticDir != "" && s.serveStatic(w, r, own) {
		return
	}
	switch {
	case ep == nil:
		s.log.Debug("not found", "path", r.URL.Path, "why", why)
		http.Error(w, "404 Not Found: no WebSocket endpoint at "+r.URL.Path, http.StatusNotFound)
	case get && s.opts.DevConsole:
		serveConsole(w)
	default:
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "426 Upgrade Required: this is a WebSocket endpoint; connect with a WebSocket client, e.g. ws://"+r.Host+r.URL.Path, http.StatusUpgradeRequired)
	}
}
