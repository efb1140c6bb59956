package http1

import (
	"bytes"
	"testing"
)

func TestParseResponse(t *testing.T) {
	type want struct {
		status int
		reason string
		length int64
		chunk  bool
		close  bool
	}
	for _, tc := range []struct {
		name, head string
		want       want
		bad        bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", want{200, "OK", 5, false, false}, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", want{200, "OK", -1, true, false}, false},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", want{200, "OK", -1, true, false}, false},
		{"chunked not last: until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", want{200, "OK", -1, false, true}, false},
		{"until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", want{200, "OK", -1, false, true}, false},
		{"no body needs no close", "HTTP/1.1 304 Not Modified\r\n\r\n", want{304, "Not Modified", -1, false, false}, false},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", want{200, "OK", 0, false, true}, false},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", want{200, "OK", 0, false, false}, false},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", want{200, "OK", 0, false, true}, false},
		{"no reason", "HTTP/1.1 204\r\n\r\n", want{204, "", -1, false, false}, false},
		{"empty reason", "HTTP/1.1 204 \r\n\r\n", want{204, "", -1, false, false}, false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\n\n", want{200, "OK", 1, false, false}, false},
		{"two equal lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", want{200, "OK", 1, false, false}, false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", want{}, true},
		{"length with sign", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", want{}, true},
		{"length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n", want{}, true},
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n", want{}, true},
		{"status too short", "HTTP/1.1 20 OK\r\n\r\n", want{}, true},
		{"status letters", "HTTP/1.1 2x0 OK\r\n\r\n", want{}, true},
		{"status 600", "HTTP/1.1 600 OK\r\n\r\n", want{}, true},
		{"status run on", "HTTP/1.1 2000 OK\r\n\r\n", want{}, true},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", want{}, true},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", want{}, true},
		{"bare CR", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", want{}, true},
		{"not whole", "HTTP/1.1 200 OK\r\nX: a\r\n", want{}, true},
		{"request", "GET / HTTP/1.1\r\n\r\n", want{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseResponse([]byte(tc.head))
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{r.Status, r.Reason, r.ContentLength, r.Chunked, r.Close}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzParseResponse checks the response parser never panics and that
// what it accepts frames a body one way only.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 404\nConnection: keep-alive\n\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if r.Status < 100 || r.Status > 599 {
			t.Fatalf("status %d accepted", r.Status)
		}
		if r.Chunked && r.ContentLength >= 0 {
			t.Fatalf("two framings: %+v", r)
		}
		if r.ContentLength < -1 {
			t.Fatalf("length %d", r.ContentLength)
		}
		if !r.Chunked && r.ContentLength < 0 && r.HasBody("GET") && !r.Close {
			t.Fatalf("a body to the end of the connection, kept alive: %q", b)
		}
		for _, f := range r.Fields {
			if bytes.ContainsAny([]byte(f[0]+f[1]), "\r\n\x00") || f[0] == "" {
				t.Fatalf("field %q", f)
			}
		}
		if bytes.ContainsAny([]byte(r.Reason), "\r\n") {
			t.Fatalf("reason %q", r.Reason)
		}
	})
}
