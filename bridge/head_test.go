package bridge

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
)

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		head    string
		want    requestHead
		wantErr bool
	}{
		{"websocket", "GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
			requestHead{method: "GET", target: "/chat?x=1", proto: "HTTP/1.1", upgrade: true, host: "a"}, false},
		{"upgrade case and list", "GET / HTTP/1.1\r\nupgrade:  h2c , WebSocket\r\n\r\n",
			requestHead{method: "GET", target: "/", proto: "HTTP/1.1", upgrade: true}, false},
		{"plain", "GET /index.html HTTP/1.0\r\nHost: a\r\n\r\n",
			requestHead{method: "GET", target: "/index.html", proto: "HTTP/1.0", host: "a"}, false},
		{"Host trimmed, any case", "GET / HTTP/1.1\r\nhOST:   b:80  \r\n\r\n",
			requestHead{method: "GET", target: "/", proto: "HTTP/1.1", host: "b:80"}, false},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", requestHead{}, true},
		{"bare LF", "POST /x HTTP/1.1\nUpgrade: websocket\n\n",
			requestHead{method: "POST", target: "/x", proto: "HTTP/1.1", upgrade: true}, false},
		{"other upgrade", "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
			requestHead{method: "GET", target: "/", proto: "HTTP/1.1"}, false},
		{"websocket in another header", "GET / HTTP/1.1\r\nX-Upgrade: websocket\r\n\r\n",
			requestHead{method: "GET", target: "/", proto: "HTTP/1.1"}, false},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\n", requestHead{}, true},
		{"no version", "GET /\r\n\r\n", requestHead{}, true},
		{"bad method", "G(T / HTTP/1.1\r\n\r\n", requestHead{}, true},
		{"header without colon", "GET / HTTP/1.1\r\nnonsense\r\n\r\n", requestHead{}, true},
		{"extra spaces", "GET  / HTTP/1.1\r\n\r\n", requestHead{}, true},
		{"empty field name", "GET / HTTP/1.1\r\n: x\r\n\r\n", requestHead{}, true},
		{"space before colon", "GET / HTTP/1.1\r\nUpgrade : websocket\r\n\r\n", requestHead{}, true},
		{"bare CR in value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", requestHead{}, true},
		{"NUL in value", "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", requestHead{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHead([]byte(tc.head))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseHead = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestReadHead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chunks   []string
		size     int
		wantHead string
		wantRest string
		wantErr  error
	}{
		{"one read", []string{"GET / HTTP/1.1\r\n\r\n"}, 512, "GET / HTTP/1.1\r\n\r\n", "", nil},
		{"split terminator", []string{"GET / HTTP/1.1\r\n\r", "\nXY"}, 512, "GET / HTTP/1.1\r\n\r\n", "XY", nil},
		{"byte by byte", splitBytes("GET / HTTP/1.1\r\nA: b\r\n\r\n"), 512, "GET / HTTP/1.1\r\nA: b\r\n\r\n", "", nil},
		{"leading CRLF", []string{"\r\n", "GET / HTTP/1.1\r\n\r\n"}, 512, "GET / HTTP/1.1\r\n\r\n", "", nil},
		{"frame after head", []string{"GET / HTTP/1.1\r\n\r\n\x81\x80abcd"}, 512, "GET / HTTP/1.1\r\n\r\n", "\x81\x80abcd", nil},
		{"too large", []string{"GET / HTTP/1.1\r\nA: " + string(bytes.Repeat([]byte("x"), 600))}, 512, "", "", errHeadTooLarge},
		{"eof mid head", []string{"GET / HTTP/1.1\r\n"}, 512, "", "", errHeadBad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			go func() {
				for _, c := range tc.chunks {
					if _, err := client.Write([]byte(c)); err != nil {
						return
					}
				}
				client.Close()
			}()
			defer server.Close()
			_ = server.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, tc.size)
			hl, n, err := readHead(server, buf, 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if string(buf[:hl]) != tc.wantHead || string(buf[hl:n]) != tc.wantRest {
				t.Fatalf("head %q rest %q; want %q %q", buf[:hl], buf[hl:n], tc.wantHead, tc.wantRest)
			}
		})
	}
}

func splitBytes(s string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i : i+1]
	}
	return out
}

// FuzzParseHead checks the router's head parser never panics, finds the
// head end consistently however the bytes arrive, and only routes to the
// upgrader requests that name websocket in an Upgrade header.
func FuzzParseHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\nUpgrade: a,websocket\n\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nUpgrade:\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// readHead rescans from three bytes before the previous end of
		// data: any start up to end-3 must find the same head end.
		end := headEnd(b, 0)
		for from := 1; from <= end-3; from++ {
			if e := headEnd(b, from); e != end {
				t.Fatalf("headEnd from %d = %d, from 0 = %d", from, e, end)
			}
		}
		h, err := parseHead(b)
		if err != nil {
			return
		}
		if h.upgrade && !bytes.Contains(bytes.ToLower(b), []byte("websocket")) {
			t.Fatalf("routed to the upgrader without a websocket token: %q", b)
		}
		if h.method == "" || h.target == "" {
			t.Fatalf("accepted an empty request line: %+v", h)
		}
		for _, f := range headFields(b) {
			if bytes.ContainsAny([]byte(f[0]+f[1]), "\r\n") {
				t.Fatalf("field %q holds a line break", f)
			}
		}
	})
}

func TestOriginPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		origins []string
		same    bool
		origin  string
		host    string
		allowed bool
	}{
		{"no origin header", nil, false, "", "dev:8080", true},
		{"default same origin", nil, false, "http://dev:8080", "dev:8080", true},
		{"default same origin default port", nil, false, "http://dev", "dev:80", true},
		{"default cross origin", nil, false, "http://evil.example", "dev:8080", false},
		{"default other port", nil, false, "http://dev:9000", "dev:8080", false},
		{"default https scheme port", nil, false, "https://dev", "dev", false},
		{"case insensitive", nil, false, "HTTP://DEV:8080", "dev:8080", true},
		{"star", []string{"*"}, false, "http://evil.example", "dev:8080", true},
		{"listed host any port", []string{"app.example"}, false, "https://app.example:4443", "dev:8080", true},
		{"listed host:port", []string{"app.example:8000"}, false, "http://app.example:8000", "dev:8080", true},
		{"listed wrong port", []string{"app.example:8000"}, false, "http://app.example:8001", "dev:8080", false},
		{"listed with scheme", []string{"https://app.example"}, false, "http://app.example", "dev:8080", false},
		{"comma list", []string{"a.example, b.example"}, false, "http://b.example", "dev", true},
		{"list excludes same origin", []string{"a.example"}, false, "http://dev:8080", "dev:8080", false},
		{"list plus sameorigin", []string{"a.example"}, true, "http://dev:8080", "dev:8080", true},
		{"null refused", nil, false, "null", "dev", false},
		{"null listed", []string{"null"}, false, "null", "dev", true},
		{"ipv6", nil, false, "http://[::1]:8080", "[::1]:8080", true},
		{"malformed", nil, false, "::::", "dev", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := newOriginPolicy(tc.origins, tc.same).check(tc.origin, tc.host, false)
			if (err == nil) != tc.allowed {
				t.Fatalf("check(%q, %q) = %v, want allowed=%v", tc.origin, tc.host, err, tc.allowed)
			}
			if err != nil && tc.origin != "::::" && !bytes.Contains([]byte(err.Error()), []byte("--origin")) {
				t.Fatalf("refusal %q does not name the flag that allows it", err)
			}
		})
	}
}

func TestHeadFields(t *testing.T) {
	head := "GET /x HTTP/1.1\r\nHost: dev:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: abc==\r\nX-Empty:\r\nX-Pad:   v  \r\n\r\n"
	got := headFields([]byte(head))
	want := [][2]string{{"Host", "dev:8080"}, {"Upgrade", "websocket"}, {"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", "abc=="}, {"X-Empty", ""}, {"X-Pad", "v"}}
	if len(got) != len(want) {
		t.Fatalf("headFields = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("field %d = %q, want %q", i, got[i], want[i])
		}
	}
}
