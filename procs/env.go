package procs

import (
	"bytes"
	"os"
	"slices"
	"strings"
)

// CGI is the request a child's CGI-style environment is made from.
type CGI struct {
	RemoteAddr, RemotePort string
	ServerName, ServerPort string
	Protocol               string // "HTTP/1.1"
	Method                 string
	URI                    string // as requested: path?query
	ScriptName, PathInfo   string
	Query                  string
	ContentLength          string // CONTENT_LENGTH, set when non-empty
	ContentType            string // CONTENT_TYPE, set when non-empty
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
//     empty), HTTPS=on when HTTPS is set, and CONTENT_LENGTH and
//     CONTENT_TYPE when set;
//   - each request header as HTTP_NAME: the name upper-cased with '-' made
//     '_', sorted by name. Repeated headers (names equal but for case) are
//     joined with ", " in order, Cookie with "; " (RFC 6265). A header is dropped when its
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
	// Size the buffer once: the keys of the CGI variables take under 256
	// bytes, a header's "HTTP_", "=" and separators under 8.
	size := len(c.RemoteAddr) + len(c.RemotePort) + len(c.ServerName) + len(c.ServerPort) +
		len(c.Protocol) + len(c.Method) + len(c.URI) + len(c.ScriptName) + len(c.PathInfo) +
		len(c.Query) + len(c.UniqueID) + len(c.ServerSoftware) + len(c.ContentLength) + len(c.ContentType) + 256
	for _, h := range c.Headers {
		size += len(h[0]) + len(h[1]) + 8
	}
	for _, name := range pass {
		if v, ok := os.LookupEnv(name); ok {
			size += len(name) + len(v) + 2
		}
	}
	b := envBuilder{buf: make([]byte, 0, size)}

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
	if c.ContentLength != "" {
		b.add("CONTENT_LENGTH", c.ContentLength)
	}
	if c.ContentType != "" {
		b.add("CONTENT_TYPE", c.ContentType)
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

// envBuilder appends entries to one byte slice, each ended by a NUL
// (which no key or value can hold: values are cleaned of control
// characters, and the daemon's own cannot hold one), turned into strings
// at once at the end.
type envBuilder struct {
	buf []byte
	n   int // entries
}

func (b *envBuilder) add(key, value string) {
	b.buf = append(b.buf, key...)
	b.buf = append(b.buf, '=')
	b.buf = appendClean(b.buf, value)
	b.end()
}

func (b *envBuilder) end() {
	b.buf = append(b.buf, 0)
	b.n++
}

// addHeaders adds each acceptable header once, with the values of its
// repeats, sorted by variable name: a sort, not a quadratic search, so
// that a flood of headers costs O(n log n). Up to 64 headers take no
// allocation.
func (b *envBuilder) addHeaders(hs [][2]string) {
	var arr [64]int
	idx := arr[:0] // acceptable headers, sorted by name, in order within a name
	for i, h := range hs {
		if headerName(h[0]) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(i, j int) int { return compareNames(hs[i][0], hs[j][0]) })
	for k := 0; k < len(idx); {
		name := hs[idx[k]][0]
		sep := ", "
		if compareNames(name, "Cookie") == 0 {
			sep = "; "
		}
		b.buf = append(b.buf, "HTTP_"...)
		for j := 0; j < len(name); j++ {
			b.buf = append(b.buf, envChar(name[j]))
		}
		b.buf = append(b.buf, '=')
		for first := k; k < len(idx) && compareNames(hs[idx[k]][0], name) == 0; k++ {
			if k > first {
				b.buf = append(b.buf, sep...)
			}
			b.buf = appendClean(b.buf, hs[idx[k]][1])
		}
		b.end()
	}
}

// compareNames orders acceptable header names as their variables: by
// bytes, ASCII letters upper-cased ('-' sorts as '_'). Byte-wise on
// purpose: Unicode folding (strings.EqualFold) makes "\u212Aey", with a
// Kelvin sign, equal "key".
func compareNames(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		if c, d := envChar(a[i]), envChar(b[i]); c != d {
			return int(c) - int(d)
		}
	}
	return len(a) - len(b)
}

// has reports whether key is set already.
func (b *envBuilder) has(key string) bool {
	for e := b.buf; len(e) > 0; {
		end := bytes.IndexByte(e, 0)
		if end > len(key) && e[len(key)] == '=' && string(e[:len(key)]) == key {
			return true
		}
		e = e[end+1:]
	}
	return false
}

func (b *envBuilder) strings() []string {
	s := string(b.buf)
	env := make([]string, 0, b.n)
	for len(s) > 0 {
		end := strings.IndexByte(s, 0)
		env = append(env, s[:end])
		s = s[end+1:]
	}
	return env
}

// headerName reports whether a header of this name goes into the
// environment: ASCII letters, digits and '-' only, and not Proxy.
func headerName(name string) bool {
	if name == "" || compareNames(name, "Proxy") == 0 {
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
