package http1

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// head is what routing reads of a parsed request.
type head struct {
	method, target, proto string
	upgrade               bool
	host                  string
}

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		head    string
		want    head
		wantErr bool
	}{
		{"websocket", "GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
			head{"GET", "/chat?x=1", "HTTP/1.1", true, "a"}, false},
		{"upgrade case and list", "GET / HTTP/1.1\r\nupgrade:  h2c , WebSocket\r\n\r\n",
			head{"GET", "/", "HTTP/1.1", true, ""}, false},
		{"plain", "GET /index.html HTTP/1.0\r\nHost: a\r\n\r\n",
			head{"GET", "/index.html", "HTTP/1.0", false, "a"}, false},
		{"Host trimmed, any case", "GET / HTTP/1.1\r\nhOST:   b:80  \r\n\r\n",
			head{"GET", "/", "HTTP/1.1", false, "b:80"}, false},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", head{}, true},
		{"bare LF", "POST /x HTTP/1.1\nUpgrade: websocket\n\n",
			head{"POST", "/x", "HTTP/1.1", true, ""}, false},
		{"other upgrade", "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
			head{"GET", "/", "HTTP/1.1", false, ""}, false},
		{"websocket in another header", "GET / HTTP/1.1\r\nX-Upgrade: websocket\r\n\r\n",
			head{"GET", "/", "HTTP/1.1", false, ""}, false},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\n", head{}, true},
		{"no version", "GET /\r\n\r\n", head{}, true},
		{"bad method", "G(T / HTTP/1.1\r\n\r\n", head{}, true},
		{"header without colon", "GET / HTTP/1.1\r\nnonsense\r\n\r\n", head{}, true},
		{"extra spaces", "GET  / HTTP/1.1\r\n\r\n", head{}, true},
		{"empty field name", "GET / HTTP/1.1\r\n: x\r\n\r\n", head{}, true},
		{"space before colon", "GET / HTTP/1.1\r\nUpgrade : websocket\r\n\r\n", head{}, true},
		{"bare CR in value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", head{}, true},
		{"NUL in value", "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", head{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.head), Peer{})
			var got head
			if err == nil {
				got = head{r.Method, r.Target, r.Proto, r.Upgrade, r.Host}
			}
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Parse = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
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
		{"too large", []string{"GET / HTTP/1.1\r\nA: " + string(bytes.Repeat([]byte("x"), 600))}, 512, "", "", ErrHeadTooLarge},
		{"eof mid head", []string{"GET / HTTP/1.1\r\n"}, 512, "", "", ErrHeadBad},
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
			hl, n, err := ReadHead(server, buf, 0)
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

// FuzzParseHead checks the request parser never panics, finds the
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
		h, err := Parse(b, Peer{})
		if err != nil {
			return
		}
		if h.Upgrade && !bytes.Contains(bytes.ToLower(b), []byte("websocket")) {
			t.Fatalf("routed to the upgrader without a websocket token: %q", b)
		}
		if h.Method == "" || h.Target == "" {
			t.Fatalf("accepted an empty request line: %+v", h)
		}
		if h.PathErr == nil && !strings.HasPrefix(h.Path, "/") {
			t.Fatalf("path %q accepted without a leading slash", h.Path)
		}
		if rej := h.CheckUpgrade(); rej == nil && len(AcceptKey(h.ws.key)) != 28 {
			t.Fatalf("upgrade accepted with key %q", h.ws.key)
		}
		for _, f := range h.Fields {
			if bytes.ContainsAny([]byte(f[0]+f[1]), "\r\n") {
				t.Fatalf("field %q holds a line break", f)
			}
		}
	})
}

func TestFields(t *testing.T) {
	head := "GET /x HTTP/1.1\r\nHost: dev:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: abc==\r\nX-Empty:\r\nX-Pad:   v  \r\n\r\n"
	r, err := Parse([]byte(head), Peer{})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Fields
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

// TestContentLengthDigits: a Content-Length is digits only; a sign or a
// space inside would be read otherwise by a proxy in front.
func TestContentLengthDigits(t *testing.T) {
	for _, c := range []struct {
		v   string
		bad bool
	}{{"5", false}, {"0", false}, {"+5", true}, {"-0", true}, {"5 5", true}, {"0x5", true}, {"", true}} {
		r, err := Parse([]byte("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "+c.v+"\r\n\r\n"), Peer{})
		if err != nil {
			t.Fatal(err)
		}
		if r.BadLength != c.bad {
			t.Errorf("Content-Length %q: BadLength %v, want %v", c.v, r.BadLength, c.bad)
		}
	}
	for _, v := range []string{"+5", "-0"} {
		if _, err := ParseResponse([]byte("HTTP/1.1 200 OK\r\nContent-Length: " + v + "\r\n\r\n")); err == nil {
			t.Errorf("ParseResponse took Content-Length %q", v)
		}
	}
}

// TestRemoteHostPortUnix: a client on a unix socket has no address for
// REMOTE_ADDR (the socket says "@"), unless a trusted proxy names one.
func TestRemoteHostPortUnix(t *testing.T) {
	p := Peer{Remote: &net.UnixAddr{Name: "@", Net: "unix"}}
	if h, port := p.RemoteHostPort(); h != "" || port != "" {
		t.Errorf("unix peer: %q %q, want none", h, port)
	}
	p.Forwarded = &Forwarded{For: "192.0.2.7"}
	if h, _ := p.RemoteHostPort(); h != "192.0.2.7" {
		t.Errorf("unix peer behind a trusted proxy: %q, want the forwarded 192.0.2.7", h)
	}
}
