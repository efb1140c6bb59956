package http1

import (
	"bytes"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Request is a request head, parsed once. Strings are copies: a Request
// outlives the buffer its head was read into.
type Request struct {
	Method, Target, Proto string
	Major, Minor          int // of Proto

	// The target split: RawPath as sent, Path decoded (PathErr set when
	// it does not decode), Query undecoded. An absolute-form target
	// ("http://host/path") gives its path; Absolute says so.
	RawPath, Path, Query string
	PathErr              error
	Absolute             bool

	Fields [][2]string // the header fields in order, as sent, values trimmed
	Host   string      // the Host field, trimmed; "": none
	Origin string      // the first Origin field; "": none

	// Upgrade says the request asks for a WebSocket (websocket is among
	// the Upgrade field's tokens): it goes to the upgrade, which checks
	// the rest (see Upgrade).
	Upgrade bool
	ws      wsFields

	// What a plain answer needs: whether the connection may carry
	// another request after this one, and whether a body follows
	// (which the bridge never reads).
	Close         bool
	ContentLength int64 // -1: none given
	Chunked       bool  // Transfer-Encoding given
	BadLength     bool  // a Content-Length that does not parse, or two that differ

	Peer Peer
}

// Peer is where a request came from and how: the socket's two ends, and
// whether the connection is secure. A trusted proxy in front may say who
// the client really is (the PROXY protocol, X-Forwarded-For); Forwarded
// then holds what it said, and Remote stays the proxy.
type Peer struct {
	Remote, Local net.Addr
	Secure        bool // TLS, the bridge's own or a trusted proxy's
	Forwarded     *Forwarded
}

// Forwarded is what a trusted proxy said of the client behind it.
type Forwarded struct {
	For   string // the client's address, host[:port]
	Proto string // "http" or "https"
	Host  string // the Host the client asked for
}

// RemoteHostPort returns the client's host and port: the forwarded
// address when a trusted proxy gave one, else the socket's (none for a
// unix socket's).
func (p Peer) RemoteHostPort() (host, port string) {
	if p.Forwarded != nil && p.Forwarded.For != "" {
		return SplitHostPort(p.Forwarded.For, "")
	}
	if p.Remote == nil {
		return "", ""
	}
	if _, ok := p.Remote.(*net.UnixAddr); ok {
		// A client on a unix socket has no address ("@" or ""), and
		// REMOTE_ADDR is none of that: empty, unless a trusted proxy
		// on the socket names the client.
		return "", ""
	}
	return SplitHostPort(p.Remote.String(), "")
}

// RemoteString is the client's address as the log shows it.
func (p Peer) RemoteString() string {
	if p.Forwarded != nil && p.Forwarded.For != "" {
		return p.Forwarded.For
	}
	if p.Remote == nil {
		return ""
	}
	return p.Remote.String()
}

// wsFields are the fields of a WebSocket upgrade, checked as they come
// (see Upgrade).
type wsFields struct {
	key  string
	bad  *Rejection // the first field in the head that fails the upgrade
	seen uint8      // which required fields were seen
}

const (
	seenHost = 1 << iota
	seenUpgrade
	seenConnection
	seenVersion
	seenKey
	seenAll = seenHost | seenUpgrade | seenConnection | seenVersion | seenKey
)

// Parse parses a request head that ReadHead found. It is strict where
// the bridge must be (the request line, field syntax, one Host) and
// records, without failing, what only some answers need: a path that
// does not decode, a bad Content-Length, an upgrade's bad fields.
func Parse(b []byte, peer Peer) (*Request, error) {
	r := &Request{Peer: peer, ContentLength: -1}
	line, rest, ok := cutLine(b)
	if !ok {
		return nil, ErrHeadBad
	}
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || len(parts[0]) == 0 || len(parts[1]) == 0 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) {
		return nil, ErrHeadBad
	}
	if !isToken(parts[0]) || bytes.IndexByte(line, '\r') >= 0 {
		return nil, ErrHeadBad
	}
	r.Method, r.Target, r.Proto = string(parts[0]), string(parts[1]), string(parts[2])
	r.Major, r.Minor = 1, -1
	if m, err := strconv.Atoi(r.Proto[len("HTTP/1."):]); err == nil && m >= 0 && len(r.Proto) == len("HTTP/1.")+1 {
		r.Minor = m
	}
	r.parseTarget()
	hosts := 0
	keepAlive := false
	for len(rest) > 0 {
		line, rest, ok = cutLine(rest)
		if !ok || len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || !isToken(name) || bytes.IndexByte(value, '\r') >= 0 || bytes.IndexByte(value, 0) >= 0 {
			// RFC 9112 5: a field name is a token, with no space
			// before the colon; a bare CR or a NUL is never valid.
			return nil, ErrHeadBad
		}
		value = bytes.TrimSpace(value)
		n, v := string(name), string(value)
		r.Fields = append(r.Fields, [2]string{n, v})
		switch {
		case strings.EqualFold(n, "Host"):
			if hosts++; hosts > 1 {
				// RFC 9112 3.2: which of two would the Host check
				// and the handler each take?
				return nil, ErrHeadBad
			}
			r.Host = v
			r.ws.seen |= seenHost
		case strings.EqualFold(n, "Upgrade"):
			if HasToken(v, "websocket") {
				r.Upgrade = true
			}
			r.ws.seen |= seenUpgrade
			r.ws.check(!strings.EqualFold(v, "websocket"), errBadUpgrade)
		case strings.EqualFold(n, "Connection"):
			r.ws.seen |= seenConnection
			r.ws.check(!HasToken(v, "upgrade"), errBadConnection)
			r.Close = r.Close || HasToken(v, "close")
			keepAlive = keepAlive || HasToken(v, "keep-alive")
		case strings.EqualFold(n, "Sec-WebSocket-Version"):
			r.ws.seen |= seenVersion
			r.ws.check(v != "13", errBadVersion)
		case strings.EqualFold(n, "Sec-WebSocket-Key"):
			r.ws.seen |= seenKey
			r.ws.check(len(v) != 24, errBadKey)
			r.ws.key = v
		case strings.EqualFold(n, "Origin"):
			if r.Origin == "" {
				r.Origin = v
			}
		case strings.EqualFold(n, "Content-Length"):
			// Digits only (RFC 9110 8.6): ParseInt takes "+5", which a
			// proxy in front may read otherwise.
			l, err := strconv.ParseInt(v, 10, 64)
			if err != nil || !allDigits(v) || l < 0 || r.ContentLength >= 0 && l != r.ContentLength {
				r.BadLength = true
			}
			r.ContentLength = l
		case strings.EqualFold(n, "Transfer-Encoding"):
			r.Chunked = true
		}
	}
	if r.Minor == 0 && !keepAlive {
		r.Close = true // HTTP/1.0 closes unless asked not to
	}
	return r, nil
}

// check records the upgrade's first bad field.
func (w *wsFields) check(bad bool, why *Rejection) {
	if bad && w.bad == nil {
		w.bad = why
	}
}

// parseTarget splits the target into path and query, and decodes the
// path.
func (r *Request) parseTarget() {
	t := r.Target
	if i := strings.Index(t, "://"); i > 0 && !strings.HasPrefix(t, "/") {
		// Absolute form (RFC 9112 3.2.2): the path after the authority.
		rest := t[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			rest = "/"
		} else {
			rest = rest[j:]
		}
		if strings.HasPrefix(rest, "?") {
			rest = "/" + rest
		}
		t, r.Absolute = rest, true
	}
	r.RawPath, r.Query, _ = strings.Cut(t, "?")
	p, err := url.PathUnescape(r.RawPath)
	if err == nil && !strings.HasPrefix(p, "/") {
		err = ErrHeadBad
	}
	r.Path, r.PathErr = p, err
}

// ProtoAtLeast reports whether the request's HTTP version is at least
// major.minor.
func (r *Request) ProtoAtLeast(major, minor int) bool {
	return r.Major > major || r.Major == major && r.Minor >= minor
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.ContentLength > 0 || r.Chunked }

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

// HasToken reports whether a comma-separated header value lists token,
// ignoring case and spaces.
func HasToken(value, token string) bool {
	for len(value) > 0 {
		var item string
		item, value, _ = strings.Cut(value, ",")
		if strings.EqualFold(strings.TrimSpace(item), token) {
			return true
		}
	}
	return false
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !IsTokenChar(c) {
			return false
		}
	}
	return len(b) > 0
}

// IsTokenChar reports whether c may appear in an HTTP token (RFC 9110
// 5.6.2): a field name, a method.
func IsTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// SplitHostPort splits "host:port", "[v6]:port", "host" or "[v6]", with
// defPort for a missing port.
func SplitHostPort(hp, defPort string) (string, string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	return strings.Trim(hp, "[]"), defPort
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
