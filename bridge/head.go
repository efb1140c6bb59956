package bridge

import (
	"bytes"
	"errors"
	"io"
	"net"
)

// requestHead is what the listener needs of a request head to route it:
// the request line and whether it asks for a WebSocket. The upgrader
// parses the whole head again; net/http parses the rest.
type requestHead struct {
	method, target, proto string
	upgrade               bool   // Upgrade: websocket
	host                  string // the Host field's value, trimmed; "": none
}

// Head errors, each answered with its own status.
var (
	errHeadTooLarge = errors.New("request head too large")
	errHeadBad      = errors.New("malformed request head")
)

// readHead reads from conn into buf, whose first have bytes are read
// already, until it holds a whole request head (up to and including the
// empty line). It returns the head's length; bytes after it in buf[:n]
// arrived early (a pipelined request or frame) and belong to whoever
// takes the connection next.
func readHead(conn net.Conn, buf []byte, have int) (head, n int, err error) {
	n = have
	scanned := 0
	for {
		// A terminator can straddle reads: look back three bytes.
		if i := headEnd(buf[:n], max(0, scanned-3)); i > 0 {
			return i, n, nil
		}
		scanned = n
		if n == len(buf) {
			return 0, n, errHeadTooLarge
		}
		m, err := conn.Read(buf[n:])
		// A stray CRLF before the request line is allowed (RFC 9112 2.2).
		for n == 0 && m > 0 && (buf[0] == '\r' || buf[0] == '\n') {
			copy(buf, buf[1:m])
			m--
		}
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) && n > 0 {
				return 0, n, errHeadBad
			}
			return 0, n, err
		}
	}
}

// headEnd returns the length of the head in b (through "\r\n\r\n" or
// "\n\n"), or 0 when b holds no whole head. from says where to start
// looking, so a head read in pieces is scanned once.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return 0
}

// parseHead reads the request line and looks for "Upgrade: websocket".
// It is lenient where net/http and the upgrader check again, and strict
// only where routing needs it.
func parseHead(b []byte) (requestHead, error) {
	h, err := parseHeadLines(b)
	if err != nil {
		return requestHead{}, err
	}
	return h, nil
}

func parseHeadLines(b []byte) (requestHead, error) {
	var h requestHead
	line, rest, ok := cutLine(b)
	if !ok {
		return h, errHeadBad
	}
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || len(parts[0]) == 0 || len(parts[1]) == 0 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) {
		return h, errHeadBad
	}
	if !isToken(parts[0]) || bytes.IndexByte(line, '\r') >= 0 {
		return h, errHeadBad
	}
	h.method, h.target, h.proto = string(parts[0]), string(parts[1]), string(parts[2])
	hosts := 0
	for len(rest) > 0 {
		line, rest, ok = cutLine(rest)
		if !ok || len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || !isToken(name) || bytes.IndexByte(value, '\r') >= 0 || bytes.IndexByte(value, 0) >= 0 {
			// RFC 9112 5: a field name is a token, with no space
			// before the colon; a bare CR or a NUL is never valid.
			return h, errHeadBad
		}
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")) && hasToken(value, "websocket"):
			h.upgrade = true
		case bytes.EqualFold(name, []byte("Host")):
			if hosts++; hosts > 1 {
				// RFC 9112 3.2: which of two would the Host check
				// and the handler each take?
				return h, errHeadBad
			}
			h.host = string(bytes.TrimSpace(value))
		}
	}
	return h, nil
}

// headFields returns the header fields of a head that parseHead
// accepted, in order, names and values as sent (values trimmed). The
// upgrader does not report the fields it handles itself (Upgrade,
// Connection, Sec-WebSocket-*), and a child's environment wants them all.
func headFields(b []byte) [][2]string {
	_, rest, _ := cutLine(b)
	var fields [][2]string
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = cutLine(rest)
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			break
		}
		fields = append(fields, [2]string{string(bytes.TrimSpace(name)), string(bytes.TrimSpace(value))})
	}
	return fields
}

// cutLine splits b at the first line end ("\n" or "\r\n").
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	line = b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, b[i+1:], true
}

// hasToken reports whether a comma-separated header value lists token,
// ignoring case and spaces.
func hasToken(value []byte, token string) bool {
	for len(value) > 0 {
		var item []byte
		item, value, _ = bytes.Cut(value, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(item), []byte(token)) {
			return true
		}
	}
	return false
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return len(b) > 0
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}
