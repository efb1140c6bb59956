//go:build !wsbridge_minimal

package pages

import (
	"bytes"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// Answer serves req, a request that is not a WebSocket upgrade, on conn
// with net/http's handlers (the demo page, static files, the console) but
// not its server: the server loop is the bridge's own, which reads every
// request head itself, so an upgrade that follows plain requests on a
// kept-alive connection goes the same way as one on a fresh connection,
// and net/http's server (1.4 MB of a MIPS binary) is not linked in. It
// reports whether the connection may carry another request. A request
// with a body is answered without reading it, and the connection is then
// closed.
func (s *Site) Answer(conn net.Conn, req *http1.Request) (keep bool) {
	r, ok := httpRequest(req)
	if !ok {
		s.Respond(conn, http.StatusBadRequest, "malformed request")
		return false
	}
	w := &responseWriter{conn: conn, req: r, header: http.Header{},
		keep: !r.Close && r.ProtoAtLeast(1, 1) && !req.HasBody()}
	s.serveHTTP(w, r, req.RawPath)
	w.finish()
	return w.keep && w.err == nil
}

// httpRequest makes the net/http request the handlers read from req,
// parsed once already; false when req is one net/http would refuse.
func httpRequest(req *http1.Request) (*http.Request, bool) {
	if req.PathErr != nil || req.BadLength {
		return nil, false
	}
	u := &url.URL{Path: req.Path, RawQuery: req.Query}
	if req.RawPath != u.EscapedPath() {
		u.RawPath = req.RawPath
	}
	h := make(http.Header, len(req.Fields))
	for _, f := range req.Fields {
		k := textproto.CanonicalMIMEHeaderKey(f[0])
		h[k] = append(h[k], f[1])
	}
	r := &http.Request{
		Method: req.Method, URL: u, RequestURI: req.Target,
		Proto: req.Proto, ProtoMajor: req.Major, ProtoMinor: req.Minor,
		Header: h, Host: req.Host, Close: req.Close, Body: http.NoBody,
		ContentLength: max(req.ContentLength, 0),
		RemoteAddr:    req.Peer.RemoteString(),
	}
	if req.Chunked {
		r.TransferEncoding, r.ContentLength = []string{"chunked"}, -1
	}
	return r, true
}

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
