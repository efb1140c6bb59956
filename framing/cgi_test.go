package framing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseCGIResponse(t *testing.T) {
	type field = [2]string
	long := strings.Repeat("x", MaxCGIHeader)
	tests := []struct {
		name   string
		out    string
		status int
		reason string
		ctype  string
		header []field
		body   string // when HasHeader; otherwise the body is all of out
		plain  bool   // HasHeader false
		err    string // the error's message, with ErrCGIHeader
	}{
		{name: "content type", out: "Content-Type: text/plain\n\nhello\n",
			status: 200, ctype: "text/plain", header: []field{{"Content-Type", "text/plain"}}, body: "hello\n"},
		{name: "CRLF lines", out: "Content-Type: text/html\r\nX-Count: 3\r\n\r\n<p>hi</p>",
			status: 200, ctype: "text/html", header: []field{{"Content-Type", "text/html"}, {"X-Count", "3"}}, body: "<p>hi</p>"},
		{name: "mixed line ends", out: "Status: 201 Created\r\nContent-Type: application/json\n\r\n{}",
			status: 201, reason: "Created", ctype: "application/json",
			header: []field{{"Status", "201 Created"}, {"Content-Type", "application/json"}}, body: "{}"},
		{name: "status alone", out: "Status: 404 Not Found\n\n",
			status: 404, reason: "Not Found", header: []field{{"Status", "404 Not Found"}}, body: ""},
		{name: "status without reason", out: "Status: 204\n\n", status: 204, header: []field{{"Status", "204"}}},
		{name: "status bounds", out: "Status: 100 Continue\n\n", status: 100, reason: "Continue", header: []field{{"Status", "100 Continue"}}},
		{name: "status 599", out: "Status: 599\n\n", status: 599, header: []field{{"Status", "599"}}},
		{name: "names in any case, kept as written", out: "content-TYPE: Text/Plain\nSTATUS: 500 Oops\n\nbody",
			status: 500, reason: "Oops", ctype: "Text/Plain", header: []field{{"content-TYPE", "Text/Plain"}, {"STATUS", "500 Oops"}}, body: "body"},
		{name: "location alone is a redirect", out: "Location: https://example.com/\n\n",
			status: 302, header: []field{{"Location", "https://example.com/"}}},
		{name: "location with a status", out: "Location: /new\nStatus: 301 Moved Permanently\n\n",
			status: 301, reason: "Moved Permanently", header: []field{{"Location", "/new"}, {"Status", "301 Moved Permanently"}}},
		{name: "blanks around values go", out: "Content-Type:text/plain \t\nX-Empty:\nX-Tab:\ta b\t\n\nok",
			status: 200, ctype: "text/plain", header: []field{{"Content-Type", "text/plain"}, {"X-Empty", ""}, {"X-Tab", "a b"}}, body: "ok"},
		{name: "token characters", out: "Content-Type: a\nX!#$%&'*+-.^_`|~9: v\n\n",
			status: 200, ctype: "a", header: []field{{"Content-Type", "a"}, {"X!#$%&'*+-.^_`|~9", "v"}}},
		{name: "colons in the value", out: "Location: http://h:80/a:b\n\n", status: 302, header: []field{{"Location", "http://h:80/a:b"}}},
		{name: "non-ASCII value bytes", out: "Content-Type: text/plain\nX-Name: Grüße\n\n",
			status: 200, ctype: "text/plain", header: []field{{"Content-Type", "text/plain"}, {"X-Name", "Grüße"}}},
		{name: "a well-formed block of other fields", out: "X-Note: hi\n\nbody",
			status: 200, header: []field{{"X-Note", "hi"}}, body: "body"},
		{name: "the body keeps blank lines and fields", out: "Content-Type: text/plain\n\n\nStatus: 500\n\n",
			status: 200, ctype: "text/plain", header: []field{{"Content-Type", "text/plain"}}, body: "\nStatus: 500\n\n"},
		{name: "a block exactly at the limit", out: "X-Long: " + long[:MaxCGIHeader-10] + "\n\n",
			status: 200, header: []field{{"X-Long", long[:MaxCGIHeader-10]}}, body: ""},

		// Plain output: all of it is the body.
		{name: "empty output", out: "", plain: true},
		{name: "plain text", out: "hello world\n", plain: true},
		{name: "plain text without newline", out: "42", plain: true},
		{name: "a first line that looks like a field but no blank line", out: "Answer: 42\n", plain: true},
		{name: "a field line, then text", out: "Answer: 42\nsecond line\n\nthird", plain: true},
		{name: "a field line without newline", out: "Content-Type: text/plain", plain: true},
		{name: "a blank first line", out: "\nContent-Type: text/plain\n\n", plain: true},
		{name: "a space before the colon", out: "Content-Type : text/plain\n\n", plain: true},
		{name: "a first line starting with a blank", out: " Status: 200\n\n", plain: true},
		{name: "a colon first", out: ": x\n\n", plain: true},
		{name: "JSON", out: `{"a": 1}` + "\n\n", plain: true},
		{name: "a control character in the value", out: "Content-Type: text/plain\x00\n\n", plain: true},
		{name: "a lone CR in the value", out: "Content-Type: a\rb\n\n", plain: true},
		{name: "folding after an unknown first field", out: "Usage: prog\n  -v  verbose\n\n", plain: true},
		{name: "a block one byte over the limit", out: "X-Long: " + long[:MaxCGIHeader-9] + "\n\n", plain: true},
		{name: "many fields, no blank line in the first 64 KiB", out: strings.Repeat("X-A: b\n", MaxCGIHeader/7+1) + "\n", plain: true},

		// A CGI response with a broken block.
		{name: "a line that is no field", out: "Content-Type: text/plain\nhello\n",
			err: `framing: malformed CGI response header: line 2 "hello": not a "Name: value" field`},
		{name: "no blank line before the end", out: "Status: 200 OK\nContent-Type: text/plain\n",
			err: `framing: malformed CGI response header: line 3 "": the output ends inside the header block, before its blank line`},
		{name: "the end inside a line", out: "Location: /x\nX-A: b",
			err: `framing: malformed CGI response header: line 2 "X-A: b": the output ends inside the header block, before its blank line`},
		{name: "no blank line in the first 64 KiB", out: "Content-Type: text/plain\n" + long + "\n\n",
			err: `framing: malformed CGI response header: line 2 "` + long[:64] + `"...: no blank line ends the header block in the first 65536 bytes`},
		{name: "many fields, no blank line in the first 64 KiB, CGI", out: "Status: 200\n" + strings.Repeat("X-A: b\n", MaxCGIHeader/7) + "\n",
			err: fmt.Sprintf(`framing: malformed CGI response header: line %d "X-A:": no blank line ends the header block in the first 65536 bytes`, MaxCGIHeader/7)},
		{name: "obsolete line folding", out: "Content-Type: text/plain;\n charset=utf-8\n\n",
			err: `framing: malformed CGI response header: line 2 " charset=utf-8": obsolete line folding (a line that starts with a space or tab)`},
		{name: "a bad field name", out: "Status: 200\nX(y): z\n\n",
			err: `framing: malformed CGI response header: line 2 "X(y): z": not a "Name: value" field`},
		{name: "status of 2 digits", out: "Status: 20\n\n",
			err: `framing: malformed CGI response header: line 1 "Status: 20": a Status is 3 digits from 100 to 599, then optionally a space and a reason`},
		{name: "status 600", out: "Content-Type: text/plain\nStatus: 600 Nope\n\n",
			err: `framing: malformed CGI response header: line 2 "Status: 600 Nope": a Status is 3 digits from 100 to 599, then optionally a space and a reason`},
		{name: "status 099", out: "Status: 099\n\n", err: "framing: malformed CGI response header: line 1 \"Status: 099\": a Status is 3 digits from 100 to 599, then optionally a space and a reason"},
		{name: "status not a number", out: "Status: OK\n\n", err: "framing: malformed CGI response header: line 1 \"Status: OK\": a Status is 3 digits from 100 to 599, then optionally a space and a reason"},
		{name: "status glued to its reason", out: "Status: 200OK\n\n", err: "framing: malformed CGI response header: line 1 \"Status: 200OK\": a Status is 3 digits from 100 to 599, then optionally a space and a reason"},
		{name: "a bad status after an unknown first field", out: "X-A: b\nStatus: abc\n\n",
			err: "framing: malformed CGI response header: line 2 \"Status: abc\": a Status is 3 digits from 100 to 599, then optionally a space and a reason"},
		{name: "two Content-Types", out: "Content-Type: text/plain\ncontent-type: text/html\n\n",
			err: `framing: malformed CGI response header: line 2 "content-type: text/html": a second content-type field`},
		{name: "two Statuses", out: "Status: 200\nStatus: 404\n\n",
			err: `framing: malformed CGI response header: line 2 "Status: 404": a second Status field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseCGIResponse([]byte(tt.out))
			if tt.err != "" {
				if !errors.Is(err, ErrCGIHeader) || err.Error() != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.plain {
				if r.HasHeader || string(r.Body) != tt.out || r.Status != 200 || r.Reason != "" || r.ContentType != "" || r.Header != nil {
					t.Fatalf("got %+v, want all of the output as the body", r)
				}
				return
			}
			if !r.HasHeader || r.Status != tt.status || r.Reason != tt.reason || r.ContentType != tt.ctype ||
				!slices.Equal(r.Header, tt.header) || string(r.Body) != tt.body {
				t.Fatalf("got %+v\nwant status %d %q, type %q, header %q, body %q", r, tt.status, tt.reason, tt.ctype, tt.header, tt.body)
			}
		})
	}
}

func TestCGIResponseIsText(t *testing.T) {
	tests := []struct {
		name  string
		ctype string
		body  string
		want  bool
	}{
		{"no type, UTF-8", "", "héllo", true},
		{"no type, empty", "", "", true},
		{"no type, not UTF-8", "", "\xff\xfe", false},
		{"text/plain", "text/plain", "hi", true},
		{"text/html with charset", "text/html; charset=iso-8859-1", "hi", true},
		{"text but not UTF-8", "text/plain", "h\xe9llo", false},
		{"upper case", "TEXT/CSV", "a,b", true},
		{"application/json", "application/json", `{"a":1}`, true},
		{"application/javascript", "application/javascript", "f()", true},
		{"application/xml", " application/xml ; q=1", "<a/>", true},
		{"+json suffix", "application/vnd.api+json", "{}", true},
		{"+xml suffix", "image/svg+xml", "<svg/>", true},
		{"charset utf-8 on another type", "application/x-thing; charset=UTF-8", "x", true},
		{"quoted charset", `application/x-thing; foo=bar; Charset="utf-8"`, "x", true},
		{"charset utf8", "application/x-thing;charset=utf8", "x", true},
		{"binary type, UTF-8 body", "application/octet-stream", "hello", false},
		{"image", "image/png", "\x89PNG", false},
		{"other charset on another type", "application/x-thing; charset=latin1", "x", false},
		{"json lookalike", "application/jsonp", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CGIResponse{ContentType: tt.ctype, Body: []byte(tt.body)}
			if got := r.IsText(); got != tt.want {
				t.Fatalf("IsText() = %t, want %t", got, tt.want)
			}
		})
	}
	t.Run("from a parsed response", func(t *testing.T) {
		for out, want := range map[string]bool{
			"Content-Type: image/png\n\nabc":  false,
			"Content-Type: text/plain\n\nabc": true,
			"abc":                             true,
			"\xff":                            false,
		} {
			r, err := ParseCGIResponse([]byte(out))
			if err != nil || r.IsText() != want {
				t.Errorf("%q: IsText() = %t, %v; want %t", out, r.IsText(), err, want)
			}
		}
	})
}

func FuzzParseCGIResponse(f *testing.F) {
	for _, s := range []string{
		"", "hello\n", "Content-Type: text/plain\n\nhi", "Status: 404 Not Found\r\nX: y\r\n\r\nbody",
		"Location: /x\n\n", "Content-Type: a\nbad\n\n", "X: y\n z\n\n", "Status: 99\n\n", "A: b\n",
		"Status: 200\nStatus: 200\n\n", "X-A: 1\nStatus: 2000\n\n", "\n\n", "a:b\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		r, err := ParseCGIResponse(out)
		if err != nil {
			if !errors.Is(err, ErrCGIHeader) {
				t.Fatalf("error %v is not ErrCGIHeader", err)
			}
			if r.HasHeader || r.Body != nil || r.Header != nil {
				t.Fatalf("a response %+v with the error %v", r, err)
			}
			return
		}
		// Body is a suffix of out, in out's memory.
		if len(r.Body) > len(out) || len(r.Body) > 0 && &r.Body[0] != &out[len(out)-len(r.Body)] {
			t.Fatalf("body %q is not a suffix of %q", r.Body, out)
		}
		if !r.HasHeader {
			if len(r.Body) != len(out) || r.Status != 200 || r.Header != nil || r.ContentType != "" {
				t.Fatalf("no header, but %+v", r)
			}
		} else {
			if r.Status < 100 || r.Status > 599 || len(r.Header) == 0 || len(out)-len(r.Body) > MaxCGIHeader {
				t.Fatalf("header %+v", r)
			}
			// The fields written back as a block parse to the same response.
			var again []byte
			for _, f := range r.Header {
				again = append(again, f[0]+": "+f[1]+"\r\n"...)
			}
			again = append(append(again, "\n"...), r.Body...)
			r2, err := ParseCGIResponse(again)
			if err != nil || !r2.HasHeader || !slices.Equal(r2.Header, r.Header) || string(r2.Body) != string(r.Body) ||
				r2.Status != r.Status || r2.Reason != r.Reason || r2.ContentType != r.ContentType {
				t.Fatalf("rewritten %q: %+v, %v; want %+v", again, r2, err, r)
			}
		}
		// Whatever follows a CGI header block is the body, as it is.
		r3, err := ParseCGIResponse(append([]byte("Content-Type: text/plain\r\n\r\n"), out...))
		if err != nil || !r3.HasHeader || string(r3.Body) != string(out) || r3.ContentType != "text/plain" {
			t.Fatalf("behind a header block: %+v, %v", r3, err)
		}
	})
}
