package http1

import (
	"net/http"
	"strings"
	"testing"
)

// TestCheckUpgrade checks the upgrade's refusals, and their order: the
// first bad field as the head lists them, then the first one missing.
func TestCheckUpgrade(t *testing.T) {
	const ok = "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	for _, tc := range []struct {
		name   string
		line   string
		fields string
		status int    // 0: accepted
		body   string // part of the refusal's body
	}{
		{"accepted", "GET / HTTP/1.1", ok, 0, ""},
		{"field names in any case", "GET / HTTP/1.1", "host: a\r\nupgrade: WebSocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n", 0, ""},
		{"connection list", "GET / HTTP/1.1", strings.Replace(ok, "Connection: Upgrade", "Connection: keep-alive, upgrade", 1), 0, ""},
		{"HTTP/1.0", "GET / HTTP/1.0", ok, http.StatusHTTPVersionNotSupported, "protocol version"},
		{"POST", "POST / HTTP/1.1", ok, http.StatusMethodNotAllowed, "method"},
		{"no Host", "GET / HTTP/1.1", strings.Replace(ok, "Host: a\r\n", "", 1), http.StatusBadRequest, `"Host"`},
		{"upgrade list", "GET / HTTP/1.1", strings.Replace(ok, "Upgrade: websocket", "Upgrade: h2c, websocket", 1), http.StatusBadRequest, `"Upgrade"`},
		{"no Connection upgrade", "GET / HTTP/1.1", strings.Replace(ok, "Connection: Upgrade", "Connection: keep-alive", 1), http.StatusBadRequest, `"Connection"`},
		{"version 8", "GET / HTTP/1.1", strings.Replace(ok, "Version: 13", "Version: 8", 1), http.StatusUpgradeRequired, `"Sec-WebSocket-Version"`},
		{"no version", "GET / HTTP/1.1", strings.Replace(ok, "Sec-WebSocket-Version: 13\r\n", "", 1), http.StatusBadRequest, `"Sec-WebSocket-Version"`},
		{"short key", "GET / HTTP/1.1", strings.Replace(ok, "dGhlIHNhbXBsZSBub25jZQ==", "abc", 1), http.StatusBadRequest, `"Sec-WebSocket-Key"`},
		{"first bad field wins", "GET / HTTP/1.1", "Sec-WebSocket-Key: x\r\n" + strings.Replace(ok, "Version: 13", "Version: 8", 1), http.StatusBadRequest, `"Sec-WebSocket-Key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.line+"\r\n"+tc.fields+"\r\n"), Peer{})
			if err != nil {
				t.Fatal(err)
			}
			rej := r.CheckLine()
			if rej == nil {
				rej = r.CheckUpgrade()
			}
			switch {
			case tc.status == 0 && rej != nil:
				t.Fatalf("refused: %d %s", rej.Status, rej.Body)
			case tc.status == 0:
				resp := string(AppendUpgrade(nil, r, []byte("X-A: 1\r\n")))
				// RFC 6455 1.3's sample key and answer.
				if !strings.Contains(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") ||
					!strings.HasPrefix(resp, "HTTP/1.1 101 ") || !strings.HasSuffix(resp, "X-A: 1\r\n\r\n") {
					t.Fatalf("101 answer %q", resp)
				}
			case rej == nil:
				t.Fatalf("accepted; want %d", tc.status)
			case rej.Status != tc.status || !strings.Contains(rej.Body, tc.body):
				t.Fatalf("refused %d %q; want %d with %q", rej.Status, rej.Body, tc.status, tc.body)
			default:
				resp := string(AppendReject(nil, rej))
				if !strings.Contains(resp, "Content-Length: ") || !strings.HasSuffix(resp, rej.Body) {
					t.Fatalf("refusal %q", resp)
				}
				if tc.status == http.StatusUpgradeRequired && !strings.Contains(resp, "Sec-WebSocket-Version: 13\r\n") {
					t.Fatalf("426 without the version it takes: %q", resp)
				}
			}
		})
	}
}
