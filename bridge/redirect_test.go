package bridge

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

var redirectLocal = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80}

func parseForRedirect(head string) (*http1.Request, error) {
	return http1.Parse([]byte(head), http1.Peer{Remote: redirectLocal, Local: redirectLocal})
}

// TestRedirectLocation: the Location keeps the host and the target and
// names the TLS port, and a Host that is no name or address is refused.
func TestRedirectLocation(t *testing.T) {
	for _, tc := range []struct {
		head, want string
		port       int
	}{
		{"GET /a/b?c=d HTTP/1.1\r\nHost: board.lan:80\r\n\r\n", "https://board.lan:8443/a/b?c=d", 8443},
		{"GET / HTTP/1.1\r\nHost: board.lan\r\n\r\n", "https://board.lan/", 443},
		{"GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", "https://[::1]:8443/x", 8443},
		{"GET /x HTTP/1.0\r\n\r\n", "https://192.0.2.1:8443/x", 8443},
		{"GET /x HTTP/1.1\r\nHost: evil.example/@x\r\n\r\n", "", 8443},
		{"GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", "", 8443},
	} {
		req, err := parseForRedirect(tc.head)
		if err != nil {
			if tc.want == "" {
				continue
			}
			t.Fatalf("%q: %v", tc.head, err)
		}
		got, ok := redirectLocation(req, redirectLocal, tc.port)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%q: %q %v, want %q", tc.head, got, ok, tc.want)
		}
	}
}

// FuzzRedirectLocation: whatever Host and target a request has, the
// Location is an https URL with no byte that could end the header or
// start another, and its host is the request's.
func FuzzRedirectLocation(f *testing.F) {
	f.Add("board.lan:80", "/a?b")
	f.Add("[::1]", "/")
	f.Add("", "/x")
	f.Add("a\rb", "/%0d%0a")
	f.Fuzz(func(t *testing.T, host, target string) {
		head := "GET " + target + " HTTP/1.1\r\n"
		if host != "" {
			head += "Host: " + host + "\r\n"
		}
		req, err := parseForRedirect(head + "\r\n")
		if err != nil {
			return
		}
		loc, ok := redirectLocation(req, redirectLocal, 8443)
		if !ok {
			return
		}
		for i := 0; i < len(loc); i++ {
			if loc[i] < 0x21 || loc[i] >= 0x7f {
				t.Fatalf("Location %q has byte %#x", loc, loc[i])
			}
		}
		u, err := url.Parse(loc)
		if err != nil || u.Scheme != "https" || u.Port() != "8443" {
			t.Fatalf("Location %q: %v %+v", loc, err, u)
		}
		if want, _ := http1.SplitHostPort(req.Host, ""); req.Host != "" && !strings.EqualFold(u.Hostname(), want) {
			t.Fatalf("Location %q names host %q, the request %q", loc, u.Hostname(), req.Host)
		}
	})
}
