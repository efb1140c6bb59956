package http1

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// AppendText appends a short text answer that closes the connection: the
// status, Retry-After when retry, every header block given, and reason as
// the body.
func AppendText(dst []byte, status int, reason string, retry bool, header ...[]byte) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	dst = append(dst, "\r\n"...)
	if retry {
		dst = append(dst, "Retry-After: 1\r\n"...)
	}
	for _, h := range header {
		dst = append(dst, h...)
	}
	body := reason + "\n"
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\nConnection: close\r\n\r\n"...)
	return append(dst, body...)
}

// HeaderBlock renders h as the header lines of an answer, each ending in
// CRLF; nil for none.
func HeaderBlock(h http.Header) []byte {
	if len(h) == 0 {
		return nil
	}
	var b headerBuf
	_ = h.Write(&b)
	return b
}

type headerBuf []byte

func (b *headerBuf) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

// LingerClose half-closes conn and reads what the peer still sends for a
// moment, so the kernel ends with FIN rather than a reset that could
// destroy the answer on its way.
func LingerClose(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	}
	_ = conn.Close()
}
