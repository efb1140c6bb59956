package procs

import "os"

// CGI is the request a child's CGI-style environment is made from.
type CGI struct {
	RemoteAddr, RemotePort string
	ServerName, ServerPort string
	Protocol               string // "HTTP/1.1"
	Method                 string
	URI                    string // as requested: path?query
	ScriptName, PathInfo   string
	Query                  string
	HTTPS                  bool
	UniqueID               string
	ServerSoftware         string
	Headers                [][2]string // request headers in order, raw names and values
}

// Environ returns the child's whole environment, one KEY=VALUE per entry
// with no key twice:
//
//   - REMOTE_ADDR, REMOTE_PORT, SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL,
//     REQUEST_METHOD, REQUEST_URI, SCRIPT_NAME, PATH_INFO, QUERY_STRING,
//     GATEWAY_INTERFACE=CGI/1.1, SERVER_SOFTWARE and UNIQUE_ID, always (maybe
//     empty), and HTTPS=on when HTTPS is set;
//   - each request header as HTTP_NAME: the name upper-cased with '-' made
//     '_'. Repeated headers (names equal but for case) are joined with ", "
//     in order, Cookie with "; " (RFC 6265). A header is dropped when its
//     name is empty or has any byte but an ASCII letter, digit or '-', like
//     Apache 2.4 and nginx do: '_' would let "Content_Type" pose as
//     "Content-Type" once mapped (a header-smuggling trick), other token
//     characters make names a shell cannot use. The Proxy header is dropped
//     too: HTTP_PROXY would set the child's outgoing proxy ("httpoxy").
//   - the daemon's variables named in pass, verbatim, skipping names that
//     are unset, already set above, or not portable names
//     ([A-Za-z_][A-Za-z0-9_]*).
//
// Control characters (0x00-0x1F but tab, and 0x7F) are removed from every
// request-derived value. Keys other than passed ones match ^[A-Z0-9_]+$.
//
// All entries share one backing string.
func (c CGI) Environ(pass []string) []string {
	size := len(c.RemoteAddr) + len(c.RemotePort) + len(c.ServerName) + len(c.ServerPort) +
		len(c.Protocol) + len(c.Method) + len(c.URI) + len(c.ScriptName) + len(c.PathInfo) +
		len(c.Query) + len(c.UniqueID) + len(c.ServerSoftware) + 256
	for _, h := range c.Headers {
		size += len(h[0]) + len(h[1]) + 8
	}
	var endsArr [64]int
	b := envBuilder{buf: make([]byte, 0, size), ends: endsArr[:0]}

	b.add("REMOTE_ADDR", c.RemoteAddr)
	b.add("REMOTE_PORT", c.RemotePort)
	b.add("SERVER_NAME", c.ServerName)
	b.add("SERVER_PORT", c.ServerPort)
	b.add("SERVER_PROTOCOL", c.Protocol)
	b.add("REQUEST_METHOD", c.Method)
	b.add("REQUEST_URI", c.URI)
	b.add("SCRIPT_NAME", c.ScriptName)
	b.add("PATH_INFO", c.PathInfo)
	b.add("QUERY_STRING", c.Query)
	b.add("GATEWAY_INTERFACE", "CGI/1.1")
	b.add("SERVER_SOFTWARE", c.ServerSoftware)
	b.add("UNIQUE_ID", c.UniqueID)
	if c.HTTPS {
		b.add("HTTPS", "on")
	}
	b.addHeaders(c.Headers)
	for _, name := range pass {
		if !portableName(name) || b.has(name) {
			continue
		}
		if v, ok := os.LookupEnv(name); ok {
			b.buf = append(b.buf, name...)
			b.buf = append(b.buf, '=')
			b.buf = append(b.buf, v...)
			b.end()
		}
	}
	return b.strings()
}

// envBuilder appends entries to one byte slice, turned into strings once.
type envBuilder struct {
	buf  []byte
	ends []int // end offset of each entry in buf
}

func (b *envBuilder) add(key, value string) {
	b.buf = append(b.buf, key...)
	b.buf = append(b.buf, '=')
	b.buf = appendClean(b.buf, value)
	b.end()
}

func (b *envBuilder) end() { b.ends = append(b.ends, len(b.buf)) }

// addHeaders adds each acceptable header once, with the values of its
// repeats. O(n²) in the number of headers, which is small, and allocation
// free.
func (b *envBuilder) addHeaders(hs [][2]string) {
	for i, h := range hs {
		if !headerName(h[0]) || repeated(hs[:i], h[0]) {
			continue
		}
		sep := ", "
		if asciiEqualFold(h[0], "Cookie") {
			sep = "; "
		}
		b.buf = append(b.buf, "HTTP_"...)
		for j := 0; j < len(h[0]); j++ {
			b.buf = append(b.buf, envChar(h[0][j]))
		}
		b.buf = append(b.buf, '=')
		b.buf = appendClean(b.buf, h[1])
		for _, r := range hs[i+1:] {
			if asciiEqualFold(r[0], h[0]) {
				b.buf = append(b.buf, sep...)
				b.buf = appendClean(b.buf, r[1])
			}
		}
		b.end()
	}
}

// repeated reports whether an acceptable header named name is in hs.
func repeated(hs [][2]string, name string) bool {
	for _, h := range hs {
		if asciiEqualFold(h[0], name) {
			return true // same bytes but for case, so acceptable too
		}
	}
	return false
}

// has reports whether key is set already.
func (b *envBuilder) has(key string) bool {
	start := 0
	for _, end := range b.ends {
		e := b.buf[start:end]
		if len(e) > len(key) && e[len(key)] == '=' && string(e[:len(key)]) == key {
			return true
		}
		start = end
	}
	return false
}

func (b *envBuilder) strings() []string {
	s := string(b.buf)
	env := make([]string, len(b.ends))
	start := 0
	for i, end := range b.ends {
		env[i] = s[start:end]
		start = end
	}
	return env
}

// headerName reports whether a header of this name goes into the
// environment: ASCII letters, digits and '-' only, and not Proxy.
func headerName(name string) bool {
	if name == "" || asciiEqualFold(name, "Proxy") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// envChar maps a byte of an acceptable header name to the environment.
func envChar(c byte) byte {
	switch {
	case c == '-':
		return '_'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 'A'
	}
	return c
}

// asciiEqualFold is strings.EqualFold for ASCII only: Unicode folding
// would make "\u212Aey" (Kelvin sign) equal "key", letting a dropped
// header's value join an accepted one.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	// Names that differ mostly differ at the end (X-Foo-1, X-Foo-2).
	if n := len(a) - 1; n >= 0 && lower(a[n]) != lower(b[n]) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c-'A' < 26 {
		return c | 0x20
	}
	return c
}

// appendClean appends s without its control characters but tab.
func appendClean(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return appendCleanSlow(buf, s)
		}
	}
	return append(buf, s...)
}

func appendCleanSlow(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c != 0x7f || c == '\t' {
			buf = append(buf, c)
		}
	}
	return buf
}

// portableName reports whether name is a POSIX portable variable name.
func portableName(name string) bool {
	if name == "" || '0' <= name[0] && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
