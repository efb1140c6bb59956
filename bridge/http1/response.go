package http1

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// ErrResponseBad is a response head that does not parse: a proxy that
// guessed at it could frame the body wrong and smuggle bytes into the
// next response.
var ErrResponseBad = errors.New("malformed response head")

// Response is a response head, parsed once (a backend's, which the bridge
// relays). Strings are copies.
type Response struct {
	Proto        string
	Major, Minor int
	Status       int
	Reason       string

	Fields [][2]string // the header fields in order, as sent, values trimmed

	// The body's framing: ContentLength when given (-1: none), else
	// chunked when Chunked, else until the connection closes.
	ContentLength int64
	Chunked       bool // chunked is the last transfer coding
	// Close says the connection ends after this response: Connection:
	// close, an HTTP/1.0 response not asking to stay, or a body read
	// until the end.
	Close bool
}

// ParseResponse parses a response head (through its empty line). It is
// strict on everything that frames the body: the status line, field
// syntax, Content-Length and Transfer-Encoding.
func ParseResponse(b []byte) (*Response, error) {
	line, rest, ok := cutLine(b)
	if !ok || bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
		return nil, ErrResponseBad
	}
	// "HTTP/1.1 200 OK"; the reason may be empty, and some servers drop
	// the space before it.
	if len(line) < len("HTTP/1.x 200") || !bytes.HasPrefix(line, []byte("HTTP/1.")) ||
		line[7] < '0' || line[7] > '9' || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return nil, ErrResponseBad
	}
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return nil, ErrResponseBad
	}
	r := &Response{Proto: string(line[:8]), Major: 1, Minor: int(line[7] - '0'), ContentLength: -1}
	r.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if len(line) > 13 {
		r.Reason = string(line[13:])
	}
	keepAlive, coded := false, false
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return nil, ErrResponseBad // no empty line: not a whole head
		}
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || !isToken(name) || bytes.IndexByte(value, '\r') >= 0 || bytes.IndexByte(value, 0) >= 0 {
			// Also refuses obs-fold (a line starting with a space).
			return nil, ErrResponseBad
		}
		value = bytes.TrimSpace(value)
		n, v := string(name), string(value)
		r.Fields = append(r.Fields, [2]string{n, v})
		switch {
		case strings.EqualFold(n, "Content-Length"):
			l, err := strconv.ParseInt(v, 10, 64)
			if err != nil || !allDigits(v) || r.ContentLength >= 0 && l != r.ContentLength {
				return nil, ErrResponseBad
			}
			r.ContentLength = l
		case strings.EqualFold(n, "Transfer-Encoding"):
			coded = true
			// RFC 9112 6.3: chunked must be the last coding, or the
			// body runs to the end of the connection.
			last := strings.TrimSpace(v[strings.LastIndexByte(v, ',')+1:])
			r.Chunked = strings.EqualFold(last, "chunked")
		case strings.EqualFold(n, "Connection"):
			r.Close = r.Close || HasToken(v, "close")
			keepAlive = keepAlive || HasToken(v, "keep-alive")
		}
	}
	if coded {
		// Transfer-Encoding overrides Content-Length (RFC 9112 6.3).
		r.ContentLength = -1
	}
	if r.Minor == 0 && !keepAlive || r.ContentLength < 0 && !r.Chunked && r.HasBody("") {
		r.Close = true
	}
	return r, nil
}

// HasBody reports whether a body follows the head, for a response to a
// request with method: none for HEAD, 1xx, 204 and 304.
func (r *Response) HasBody(method string) bool {
	switch {
	case method == "HEAD", r.Status < 200, r.Status == 204, r.Status == 304:
		return false
	}
	return true
}
