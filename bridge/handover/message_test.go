package handover

import (
	"strings"
	"testing"
)

// boaUpgrade is the environment boa gives an nph- CGI for a WebSocket
// upgrade (Connection consumed, the query apart from REQUEST_URI).
var boaUpgrade = []string{
	"PATH=/bin:/usr/bin", "SERVER_SOFTWARE=Boa/0.94.101wk", "GATEWAY_INTERFACE=CGI/1.1",
	"REQUEST_METHOD=GET", "HTTP_HOST=127.0.0.1:8080", "SERVER_ADDR=127.0.0.1", "SERVER_PORT=8080",
	"SERVER_PROTOCOL=HTTP/1.1", "REQUEST_URI=/cgi-bin/nph-ws/chat room", "PATH_INFO=/chat room",
	"SCRIPT_NAME=/cgi-bin/nph-ws", "QUERY_STRING=a=1&b", "REMOTE_ADDR=127.0.0.1", "REMOTE_PORT=40123",
	"HTTP_UPGRADE=websocket", "HTTP_SEC_WEBSOCKET_KEY=dGhlIHNhbXBsZSBub25jZQ==",
	"HTTP_SEC_WEBSOCKET_VERSION=13", "HTTP_ORIGIN=http://127.0.0.1:8080",
}

func TestDecodeBoaUpgrade(t *testing.T) {
	msg, err := Encode(boaUpgrade)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(msg), "PATH=/bin") || strings.Contains(string(msg), "GATEWAY_INTERFACE") {
		t.Errorf("the message carries variables it should not: %q", msg)
	}
	r, err := Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := "GET /chat%20room?a=1&b HTTP/1.1\r\n" +
		"Host: 127.0.0.1:8080\r\n" +
		"Upgrade: websocket\r\n" +
		"Sec-Websocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-Websocket-Version: 13\r\n" +
		"Origin: http://127.0.0.1:8080\r\n" +
		"Connection: Upgrade\r\n\r\n"
	if string(r.Head) != want {
		t.Errorf("head:\n%q\nwant\n%q", r.Head, want)
	}
	if r.Remote.String() != "127.0.0.1:40123" || r.Local.String() != "127.0.0.1:8080" {
		t.Errorf("remote %v, local %v", r.Remote, r.Local)
	}
	if r.Secure || r.Script != "/cgi-bin/nph-ws" {
		t.Errorf("secure %v, script %q", r.Secure, r.Script)
	}
}

func TestDecodeKeepsConnectionAndBody(t *testing.T) {
	msg, _ := Encode([]string{"REQUEST_METHOD=POST", "REMOTE_ADDR=::ffff:10.0.0.7", "REMOTE_PORT=5",
		"HTTP_CONNECTION=keep-alive, Upgrade", "HTTP_UPGRADE=websocket", "CONTENT_LENGTH=12",
		"CONTENT_TYPE=text/plain", "HTTPS=on", "SERVER_PROTOCOL=HTTP/1.0"})
	r, err := Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := "POST / HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\n"
	if string(r.Head) != want {
		t.Errorf("head %q, want %q", r.Head, want)
	}
	if !r.Secure || r.Remote.String() != "10.0.0.7:5" || r.Local != nil {
		t.Errorf("secure %v remote %v local %v", r.Secure, r.Remote, r.Local)
	}
}

func TestDecodeRefuses(t *testing.T) {
	base := "WSBRIDGE-HANDOVER/1\x00REQUEST_METHOD=GET\x00REMOTE_ADDR=127.0.0.1\x00"
	for _, c := range []struct{ name, msg, want string }{
		{"no magic", "GET / HTTP/1.1\r\n\r\n", "magic"},
		{"old version", "WSBRIDGE-HANDOVER/0\x00", "magic"},
		{"unterminated", base + "HTTP_HOST=x", "NUL-terminated"},
		{"no equals", base + "HTTP_HOST\x00", "malformed variable"},
		{"lower-case name", base + "http_host=x\x00", "malformed variable"},
		{"not carried", base + "PATH=/bin\x00", "not one a hand-over carries"},
		{"twice", base + "HTTP_HOST=a\x00HTTP_HOST=b\x00", "given twice"},
		{"header injection", base + "HTTP_X=a\r\nEvil: 1\x00", "line break"},
		{"no method", "WSBRIDGE-HANDOVER/1\x00REMOTE_ADDR=127.0.0.1\x00", "REQUEST_METHOD"},
		{"bad method", "WSBRIDGE-HANDOVER/1\x00REQUEST_METHOD=G T\x00REMOTE_ADDR=127.0.0.1\x00", "REQUEST_METHOD"},
		{"no remote", "WSBRIDGE-HANDOVER/1\x00REQUEST_METHOD=GET\x00", "REMOTE_ADDR is missing"},
		{"bad remote", "WSBRIDGE-HANDOVER/1\x00REQUEST_METHOD=GET\x00REMOTE_ADDR=board\x00", "not an IP"},
		{"bad port", base + "REMOTE_PORT=70000\x00", "not a port"},
		{"bad proto", base + "SERVER_PROTOCOL=HTTP/2\x00", "SERVER_PROTOCOL"},
		{"relative path", base + "PATH_INFO=chat\x00", "PATH_INFO"},
		{"query with space", base + "QUERY_STRING=a b\x00", "QUERY_STRING"},
		{"too large", base + "HTTP_X=" + strings.Repeat("a", MaxMessage) + "\x00", "larger than 64 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.msg))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Decode: %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func TestEncodeTooLarge(t *testing.T) {
	if _, err := Encode([]string{"HTTP_COOKIE=" + strings.Repeat("c", MaxMessage)}); err != ErrTooLarge {
		t.Errorf("Encode: %v, want ErrTooLarge", err)
	}
}

// FuzzDecode: whatever a local program sends, Decode either refuses it
// or makes a head that is one request line, fields, and the blank line,
// with no bare line break a field could be smuggled through.
func FuzzDecode(f *testing.F) {
	msg, _ := Encode(boaUpgrade)
	f.Add(msg)
	f.Add([]byte("WSBRIDGE-HANDOVER/1\x00REQUEST_METHOD=GET\x00REMOTE_ADDR=::1\x00PATH_INFO=/%zz\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		head := string(r.Head)
		if !strings.HasSuffix(head, "\r\n\r\n") {
			t.Fatalf("head does not end with a blank line: %q", head)
		}
		lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
		if parts := strings.Split(lines[0], " "); len(parts) != 3 || !strings.HasPrefix(parts[1], "/") {
			t.Fatalf("request line %q", lines[0])
		}
		for _, l := range lines {
			if strings.ContainsAny(l, "\r\n\x00") {
				t.Fatalf("line %q holds a line break or NUL", l)
			}
		}
		for _, l := range lines[1:] {
			if name, _, ok := strings.Cut(l, ": "); !ok || !isToken(name) {
				t.Fatalf("field line %q", l)
			}
		}
	})
}
