package framing

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxCGIHeader bounds the header block ParseCGIResponse looks for: the
// block, its blank line included, must lie within the first 64 KiB of the
// output.
const MaxCGIHeader = 64 << 10

// ErrCGIHeader: a CGI program's output starts as a header block but the
// block is broken. It comes wrapped with the line at fault; test it with
// errors.Is.
var ErrCGIHeader = errors.New("framing: malformed CGI response header")

// CGIResponse is the output of a CGI program, split by ParseCGIResponse
// into its optional header block and its body.
type CGIResponse struct {
	Status      int         // the Status field's code; 200 when absent, 302 for a Location without Status
	Reason      string      // the Status field's reason phrase, as written; "" when absent
	ContentType string      // the Content-Type field's value; "" when absent
	Header      [][2]string // every field of the block in order, names as written, values trimmed
	Body        []byte      // what follows the block, or all the output; aliases the output
	HasHeader   bool        // the output starts with a header block
}

// ParseCGIResponse splits out, the whole output of a CGI program, into its
// header block and its body, following CGI/1.1 (RFC 3875 section 6).
//
// The header block is optional, so that plain programs that only print
// their answer work too. It is lines "Name: value", each ending in "\n" or
// "\r\n", names made of RFC 7230 token characters, up to a blank line; it
// must fit in MaxCGIHeader bytes. When out does not start that way (its
// first line is no field, or no blank line ends the block in time, or a
// later line is no field) all of out is the body and HasHeader is false.
// But when the first line is one of the CGI fields (Status, Content-Type,
// Location, in any case), out is taken for a CGI response, and a broken
// block is an ErrCGIHeader naming the line at fault: a CGI script with a
// bug, better reported than sent as the answer.
//
// A well-formed block is checked whatever its first line: a Status that is
// not 3 digits from 100 to 599, optionally followed by a space and a
// reason, or a CGI field given twice, is an ErrCGIHeader. A line that
// starts with a space or tab (obsolete line folding) breaks the block.
//
// Body aliases out; the strings are copies.
func ParseCGIResponse(out []byte) (CGIResponse, error) {
	plain := CGIResponse{Status: 200, Body: out}
	window := out[:min(len(out), MaxCGIHeader)]
	line, next, ok := cutLine(window)
	if !ok {
		return plain, nil
	}
	name, value, ok := parseField(line)
	if !ok {
		return plain, nil
	}
	strict := isCGIField(name)
	broken := func(n int, line []byte, what string) (CGIResponse, error) {
		if !strict {
			return plain, nil
		}
		return CGIResponse{}, fmt.Errorf("%w: line %d %s: %s", ErrCGIHeader, n, clip(line), what)
	}

	fields := [][2]string{{name, value}}
	for n := 2; ; n++ {
		var used int
		line, used, ok = cutLine(window[next:])
		if !ok {
			if len(out) > MaxCGIHeader {
				return broken(n, line, fmt.Sprintf("no blank line ends the header block in the first %d bytes", MaxCGIHeader))
			}
			return broken(n, line, "the output ends inside the header block, before its blank line")
		}
		next += used
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return broken(n, line, "obsolete line folding (a line that starts with a space or tab)")
		}
		if name, value, ok = parseField(line); !ok {
			return broken(n, line, `not a "Name: value" field`)
		}
		fields = append(fields, [2]string{name, value})
	}

	r := CGIResponse{Status: 200, Header: fields, Body: out[next:], HasHeader: true}
	var status, location, ctype bool
	for i, f := range fields {
		field := fmt.Sprintf("line %d %s", i+1, clip([]byte(f[0]+": "+f[1])))
		var seen *bool
		switch {
		case strings.EqualFold(f[0], "Status"):
			seen = &status
			code, reason, ok := parseStatus(f[1])
			if !ok {
				return CGIResponse{}, fmt.Errorf("%w: %s: a Status is 3 digits from 100 to 599, then optionally a space and a reason", ErrCGIHeader, field)
			}
			r.Status, r.Reason = code, reason
		case strings.EqualFold(f[0], "Content-Type"):
			seen = &ctype
			r.ContentType = f[1]
		case strings.EqualFold(f[0], "Location"):
			seen = &location
		default:
			continue
		}
		if *seen {
			return CGIResponse{}, fmt.Errorf("%w: %s: a second %s field", ErrCGIHeader, field, f[0])
		}
		*seen = true
	}
	if location && !status {
		r.Status = 302
	}
	return r, nil
}

// IsText reports whether the body is to be sent as a text message: it is
// valid UTF-8 and the Content-Type, if any, says text: text/*,
// application/json, application/javascript, application/xml, a *+json or
// *+xml type, or any type with charset=utf-8 (case aside).
func (r CGIResponse) IsText() bool {
	if r.ContentType != "" && !textType(r.ContentType) {
		return false
	}
	return utf8.Valid(r.Body)
}

// textType reports whether the media type ct says text.
func textType(ct string) bool {
	mt, params, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch mt {
	case "application/json", "application/javascript", "application/xml":
		return true
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		v = strings.Trim(strings.TrimSpace(v), `"`)
		if strings.EqualFold(strings.TrimSpace(k), "charset") && (strings.EqualFold(v, "utf-8") || strings.EqualFold(v, "utf8")) {
			return true
		}
	}
	return false
}

// cutLine returns the first line of p without its "\n" or "\r\n", and the
// bytes it takes with its end. ok is false when p holds no "\n": line is
// then all of p.
func cutLine(p []byte) (line []byte, used int, ok bool) {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return p, len(p), false
	}
	line = p[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, i + 1, true
}

// parseField splits a header line "Name: value". The name must be an RFC
// 7230 token, right before the colon; blanks around the value go; the value
// must hold no control character but tab.
func parseField(line []byte) (name, value string, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	for _, b := range line[:colon] {
		if !isTokenChar(b) {
			return "", "", false
		}
	}
	v := bytes.Trim(line[colon+1:], " \t")
	for _, b := range v {
		if b < ' ' && b != '\t' || b == 0x7F {
			return "", "", false
		}
	}
	return string(line[:colon]), string(v), true
}

// isTokenChar reports whether b may be part of an RFC 7230 token:
// "!#$%&'*+-.^_`|~", digits and letters.
func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return b < utf8.RuneSelf && strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// isCGIField reports whether name is one of the fields only a CGI response
// has.
func isCGIField(name string) bool {
	return strings.EqualFold(name, "Status") || strings.EqualFold(name, "Content-Type") || strings.EqualFold(name, "Location")
}

// parseStatus parses a Status value: "404" or "404 Not Found".
func parseStatus(v string) (code int, reason string, ok bool) {
	if len(v) < 3 || len(v) > 3 && v[3] != ' ' {
		return 0, "", false
	}
	for _, c := range v[:3] {
		if c < '0' || c > '9' {
			return 0, "", false
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return 0, "", false
	}
	return code, strings.TrimLeft(v[3:], " "), true
}

// clip quotes a line for an error message, cut to its first 64 bytes.
func clip(line []byte) string {
	if len(line) > 64 {
		return fmt.Sprintf("%q...", line[:64])
	}
	return fmt.Sprintf("%q", line)
}
