package http1

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strconv"
)

// Rejection is a refused upgrade: the status, the header lines that go
// with it (each ending in CRLF) and a body for a person to read.
type Rejection struct {
	Status int
	Header []byte
	Body   string
}

// Reject returns a Rejection with status and body.
func Reject(status int, body string, header ...[]byte) *Rejection {
	r := &Rejection{Status: status, Body: body}
	for _, h := range header {
		r.Header = append(r.Header, h...)
	}
	return r
}

func (r *Rejection) Error() string { return r.Body }

// The upgrade's own refusals, worded as gobwas/ws words them (its
// Upgrader answered before this package did), so clients see the same.
var (
	errBadProtocol   = Reject(http.StatusHTTPVersionNotSupported, "handshake error: bad HTTP protocol version")
	errBadMethod     = Reject(http.StatusMethodNotAllowed, "handshake error: bad HTTP request method")
	errBadHost       = Reject(http.StatusBadRequest, `handshake error: bad "Host" header`)
	errBadUpgrade    = Reject(http.StatusBadRequest, `handshake error: bad "Upgrade" header`)
	errBadConnection = Reject(http.StatusBadRequest, `handshake error: bad "Connection" header`)
	errBadKey        = Reject(http.StatusBadRequest, `handshake error: bad "Sec-WebSocket-Key" header`)
	errBadVersion    = Reject(http.StatusBadRequest, `handshake error: bad "Sec-WebSocket-Version" header`)
	// A version other than 13 gets 426 with the version this server
	// speaks (RFC 6455 4.2.2); a missing one gets 400 above.
	errVersionUnsupported = Reject(http.StatusUpgradeRequired, `handshake error: bad "Sec-WebSocket-Version" header`,
		[]byte("Sec-WebSocket-Version: 13\r\n"))
)

// CheckLine is the upgrade's first check, before the target is routed:
// an HTTP/1.1 (or later) GET.
func (r *Request) CheckLine() *Rejection {
	switch {
	case r.Major != 1 || r.Minor < 1:
		return errBadProtocol
	case r.Method != http.MethodGet:
		return errBadMethod
	}
	return nil
}

// CheckUpgrade is the upgrade's check of the fields, after routing: the
// first bad field in the head's order, else the first required field
// missing (Host, Upgrade, Connection, Sec-WebSocket-Version,
// Sec-WebSocket-Key).
func (r *Request) CheckUpgrade() *Rejection {
	if r.ws.bad != nil {
		if r.ws.bad == errBadVersion {
			return errVersionUnsupported
		}
		return r.ws.bad
	}
	switch s := r.ws.seen; {
	case s&seenHost == 0:
		return errBadHost
	case s&seenUpgrade == 0:
		return errBadUpgrade
	case s&seenConnection == 0:
		return errBadConnection
	case s&seenVersion == 0:
		return errBadVersion
	case s&seenKey == 0:
		return errBadKey
	}
	return nil
}

// AppendReject appends the answer to a refused upgrade: the status, a
// text body and every header block given (each of lines ending in CRLF),
// then the rejection's own.
func AppendReject(dst []byte, rej *Rejection, header ...[]byte) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(rej.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(rej.Status)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\n"...)
	for _, h := range header {
		dst = append(dst, h...)
	}
	dst = append(dst, rej.Header...)
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(rej.Body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, rej.Body...)
}

// AppendUpgrade appends the 101 answer to r, an upgrade that passed its
// checks, with every header block given.
func AppendUpgrade(dst []byte, r *Request, header ...[]byte) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, AcceptKey(r.ws.key)...)
	dst = append(dst, "\r\n"...)
	for _, h := range header {
		dst = append(dst, h...)
	}
	return append(dst, "\r\n"...)
}

// AcceptKey is the Sec-WebSocket-Accept answer to key (RFC 6455 4.2.2).
func AcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
