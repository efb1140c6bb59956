package bridge

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// RedirectListener returns l as a listener whose every request is
// answered with a redirect to the same host and target over https on
// tlsPort (websocketd's --redirport): 301 for GET and HEAD, 308 for the
// rest, which must be sent again as they were. The health check and the
// metrics, where asked for, are still answered there; nothing else is,
// and no connection on it is upgraded. Pass it to Serve with the TLS
// listeners.
func (s *Server) RedirectListener(l net.Listener, tlsPort int) net.Listener {
	return redirectListener{Listener: l, port: tlsPort}
}

type redirectListener struct {
	net.Listener
	port int
}

func (l redirectListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &redirectConn{Conn: c, port: l.port}, nil
}

// redirectConn is a connection to a RedirectListener: plain HTTP, never
// TLS, whatever Options.TLS says; a trusted proxy's PROXY header comes
// first there too, with --proxy-protocol.
type redirectConn struct {
	net.Conn
	port int
}

// SyscallConn gives the socket under it, for the PROXY header's peek.
func (c *redirectConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("no descriptor")
}

// CloseWrite lets LingerClose half-close it as the socket under it.
func (c *redirectConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// redirect answers req on a --redirport connection.
func (s *Server) redirect(conn *redirectConn, req *http1.Request) {
	loc, ok := redirectLocation(req, conn.LocalAddr(), conn.port)
	if !ok {
		s.respond(conn, http.StatusBadRequest, "400 Bad Request: no host to redirect to", false)
		return
	}
	status := http.StatusPermanentRedirect
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		status = http.StatusMovedPermanently
	}
	s.log.Debug("redirected to https", "remote", conn.RemoteAddr(), "location", loc)
	_, _ = conn.Write(http1.AppendText(nil, status, "This port redirects to "+loc, false,
		[]byte("Location: "+loc+"\r\n"), s.hdrAll, s.hdrHTTP))
}

// redirectLocation returns where req goes over https on port: its Host
// (the address it reached, local, when it has none) without the port,
// and its target; false when the host is no name or address, or the
// target no path.
func redirectLocation(req *http1.Request, local net.Addr, port int) (string, bool) {
	host := req.Host
	if host == "" {
		// HTTP/1.0 without Host: the address the client reached.
		host = local.String()
	}
	name, _ := http1.SplitHostPort(host, "")
	if !validHostname(name) {
		return "", false
	}
	if strings.Contains(name, ":") {
		name = "[" + name + "]"
	}
	loc := "https://" + name
	if port != 443 {
		loc += ":" + strconv.Itoa(port)
	}
	switch {
	case req.RawPath == "":
		loc += "/" // an absolute-form target with no path
	case req.RawPath[0] != '/' || req.PathErr != nil:
		return "", false // no path (OPTIONS *), or one that does not decode
	default:
		loc += escapeRaw(req.RawPath)
	}
	if req.Query != "" {
		loc += "?" + escapeRaw(req.Query)
	}
	return loc, true
}

// escapeRaw percent-encodes the bytes of a raw path or query that may
// not stand in a URL as they are (controls, space, non-ASCII, and #,
// which would begin a fragment), keeping the rest, escapes included, as
// the client sent them.
func escapeRaw(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > 0x20 && c < 0x7f && c != '#' {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	if b == nil {
		return s
	}
	return string(b)
}

// validHostname reports whether name may go into a Location: letters,
// digits, dots, dashes and underscores, or an IPv6 address.
func validHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	if strings.Contains(name, ":") {
		ip := net.ParseIP(name)
		return ip != nil
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}
