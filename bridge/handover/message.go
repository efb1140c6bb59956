package handover

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Magic opens every hand-over message: the protocol and its version.
const Magic = "WSBRIDGE-HANDOVER/1"

// MaxMessage bounds a hand-over message, magic included: as much as a
// request head may be.
const MaxMessage = 64 << 10

// carried are the CGI variables a message holds besides HTTP_*: what the
// web server parsed of the request line and the connection.
var carried = []string{
	"REQUEST_METHOD", "SERVER_PROTOCOL", "REQUEST_URI", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
	"REMOTE_ADDR", "REMOTE_PORT", "SERVER_ADDR", "SERVER_PORT", "SERVER_NAME", "HTTPS",
	"CONTENT_LENGTH", "CONTENT_TYPE",
}

// Carried reports whether a message carries the variable name.
func Carried(name string) bool {
	if strings.HasPrefix(name, "HTTP_") && len(name) > len("HTTP_") {
		return true
	}
	for _, c := range carried {
		if name == c {
			return true
		}
	}
	return false
}

// ErrTooLarge says a message would be, or was, over MaxMessage.
var ErrTooLarge = errors.New("hand-over message larger than 64 KiB")

// Encode makes the message of a CGI's environment (os.Environ's form):
// the carried variables, in the order given.
func Encode(environ []string) ([]byte, error) {
	msg := append(make([]byte, 0, 1024), Magic...)
	msg = append(msg, 0)
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !Carried(name) || strings.IndexByte(kv, 0) >= 0 {
			continue
		}
		msg = append(append(msg, kv...), 0)
	}
	if len(msg) > MaxMessage {
		return nil, ErrTooLarge
	}
	return msg, nil
}

// Request is what a message says of the request it hands over.
type Request struct {
	// Head is the request head, as a client would have sent it to the
	// daemon directly: parse it as one read from a listener.
	Head []byte
	// Remote is the client's address (REMOTE_ADDR, REMOTE_PORT); Local
	// the web server's (SERVER_ADDR, SERVER_PORT), nil when not given.
	Remote, Local net.Addr
	Secure        bool   // HTTPS=on: the web server spoke TLS to the client
	Script        string // the hand-over CGI's SCRIPT_NAME, for the log
}

// Decode checks a message and makes its Request. Its errors name the
// variable at fault.
func Decode(msg []byte) (Request, error) {
	var r Request
	if len(msg) > MaxMessage {
		return r, ErrTooLarge
	}
	rest, ok := bytes.CutPrefix(msg, []byte(Magic+"\x00"))
	if !ok {
		return r, errors.New("not a hand-over message of version 1 (no " + Magic + " magic)")
	}
	vars := map[string]string{}
	var headers [][2]string // HTTP_* in the message's order
	for len(rest) > 0 {
		kv, after, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			return r, errors.New("the last variable is not NUL-terminated")
		}
		rest = after
		name, value, ok := strings.Cut(string(kv), "=")
		if !ok || !isVarName(name) {
			return r, fmt.Errorf("malformed variable %q", clip(string(kv)))
		}
		if !Carried(name) {
			return r, fmt.Errorf("variable %s is not one a hand-over carries", name)
		}
		if _, dup := vars[name]; dup {
			return r, fmt.Errorf("variable %s given twice", name)
		}
		if strings.ContainsAny(value, "\r\n") {
			return r, fmt.Errorf("variable %s holds a line break", name)
		}
		vars[name] = value
		if strings.HasPrefix(name, "HTTP_") {
			headers = append(headers, [2]string{fieldName(name[len("HTTP_"):]), value})
		}
	}

	method := vars["REQUEST_METHOD"]
	if method == "" || !isToken(method) {
		return r, fmt.Errorf("REQUEST_METHOD %q is not a method", clip(method))
	}
	proto := vars["SERVER_PROTOCOL"]
	switch {
	case proto == "":
		proto = "HTTP/1.1"
	case proto != "HTTP/1.0" && proto != "HTTP/1.1":
		return r, fmt.Errorf("SERVER_PROTOCOL %q is not HTTP/1.0 or HTTP/1.1", clip(proto))
	}
	path := vars["PATH_INFO"]
	if path == "" {
		path = "/"
	}
	if path[0] != '/' || strings.IndexByte(path, 0) >= 0 {
		return r, fmt.Errorf("PATH_INFO %q is not a path", clip(path))
	}
	// Web servers pass the path decoded: escape what a request line
	// cannot hold (a space, say) as a client would have.
	target := (&url.URL{Path: path}).EscapedPath()
	if q, ok := vars["QUERY_STRING"]; ok && q != "" {
		if strings.ContainsAny(q, " \t#") {
			return r, fmt.Errorf("QUERY_STRING %q holds a space or '#'", clip(q))
		}
		target += "?" + q
	}
	remote, err := addr(vars, "REMOTE_ADDR", "REMOTE_PORT", true)
	if err != nil {
		return r, err
	}
	if r.Local, err = addr(vars, "SERVER_ADDR", "SERVER_PORT", false); err != nil {
		return r, err
	}
	r.Remote = remote
	r.Secure = strings.EqualFold(vars["HTTPS"], "on")
	r.Script = vars["SCRIPT_NAME"]

	head := make([]byte, 0, 256+len(msg))
	head = append(head, method...)
	head = append(head, ' ')
	head = append(head, target...)
	head = append(head, ' ')
	head = append(head, proto...)
	head = append(head, "\r\n"...)
	hasConnection := false
	for _, h := range headers {
		if strings.EqualFold(h[0], "Connection") {
			hasConnection = true
		}
		head = appendField(head, h[0], h[1])
	}
	// boa consumes Connection and does not pass it on: an upgrade
	// that reached the CGI asked for one.
	if _, up := vars["HTTP_UPGRADE"]; up && !hasConnection {
		head = appendField(head, "Connection", "Upgrade")
	}
	if v, ok := vars["CONTENT_LENGTH"]; ok && v != "" {
		head = appendField(head, "Content-Length", v)
	}
	if v, ok := vars["CONTENT_TYPE"]; ok && v != "" {
		head = appendField(head, "Content-Type", v)
	}
	r.Head = append(head, "\r\n"...)
	return r, nil
}

// addr makes an address of a host and a port variable. A missing host is
// an error only when required; a port may be missing (0).
func addr(vars map[string]string, hostVar, portVar string, required bool) (net.Addr, error) {
	host, ok := vars[hostVar]
	if !ok || host == "" {
		if required {
			return nil, fmt.Errorf("%s is missing", hostVar)
		}
		return nil, nil
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return nil, fmt.Errorf("%s %q is not an IP address", hostVar, clip(host))
	}
	port := 0
	if p, ok := vars[portVar]; ok && p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("%s %q is not a port", portVar, clip(p))
		}
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(port))), nil
}

// fieldName turns the rest of an HTTP_ variable's name back into a field
// name: SEC_WEBSOCKET_KEY is Sec-Websocket-Key (names are case-blind).
func fieldName(s string) string {
	b := []byte(strings.ToLower(s))
	up := true
	for i, c := range b {
		switch {
		case c == '_':
			b[i], up = '-', true
		case up && 'a' <= c && c <= 'z':
			b[i], up = c-'a'+'A', false
		default:
			up = false
		}
	}
	return string(b)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// isVarName reports whether s is a variable name a web server makes:
// capitals, digits and '_'.
func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110 5.6.2).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return s != ""
}

// clip shortens what an error quotes.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
