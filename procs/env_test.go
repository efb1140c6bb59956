package procs

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// cgiVars is what Environ sets for a zero CGI.
var cgiVars = []string{
	"REMOTE_ADDR=", "REMOTE_PORT=", "SERVER_NAME=", "SERVER_PORT=", "SERVER_PROTOCOL=",
	"REQUEST_METHOD=", "REQUEST_URI=", "SCRIPT_NAME=", "PATH_INFO=", "QUERY_STRING=",
	"GATEWAY_INTERFACE=CGI/1.1", "SERVER_SOFTWARE=", "UNIQUE_ID=",
}

func TestEnvironCGIVariables(t *testing.T) {
	c := CGI{
		RemoteAddr: "192.0.2.7", RemotePort: "50123",
		ServerName: "board.local", ServerPort: "8080",
		Protocol: "HTTP/1.1", Method: "GET",
		URI: "/ws/chat?room=1", ScriptName: "/ws", PathInfo: "/chat", Query: "room=1",
		HTTPS: true, UniqueID: "u-1", ServerSoftware: "wsbridge/0.1",
	}
	want := []string{
		"REMOTE_ADDR=192.0.2.7", "REMOTE_PORT=50123", "SERVER_NAME=board.local", "SERVER_PORT=8080",
		"SERVER_PROTOCOL=HTTP/1.1", "REQUEST_METHOD=GET", "REQUEST_URI=/ws/chat?room=1",
		"SCRIPT_NAME=/ws", "PATH_INFO=/chat", "QUERY_STRING=room=1", "GATEWAY_INTERFACE=CGI/1.1",
		"SERVER_SOFTWARE=wsbridge/0.1", "UNIQUE_ID=u-1", "HTTPS=on",
	}
	if got := c.Environ(nil); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	c.Method, c.ContentLength, c.ContentType = "POST", "5", "text/plain; charset=utf-8"
	want[5] = "REQUEST_METHOD=POST"
	want = append(want, "CONTENT_LENGTH=5", "CONTENT_TYPE=text/plain; charset=utf-8")
	if got := c.Environ(nil); !slices.Equal(got, want) {
		t.Errorf("a per-message CGI request: got  %q\nwant %q", got, want)
	}
	if got := (CGI{}).Environ(nil); !slices.Equal(got, cgiVars) {
		t.Errorf("zero CGI: got %q\nwant %q", got, cgiVars)
	}
}

func TestEnvironHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers [][2]string
		want    []string // after the CGI variables
	}{
		{"mapped", [][2]string{{"Host", "h"}, {"Sec-WebSocket-Protocol", "chat"}, {"x-lower", "v"}},
			[]string{"HTTP_HOST=h", "HTTP_SEC_WEBSOCKET_PROTOCOL=chat", "HTTP_X_LOWER=v"}},
		{"repeated joined in order, any case", [][2]string{{"Accept", "a"}, {"Host", "h"}, {"ACCEPT", "b"}, {"accept", ""}},
			[]string{"HTTP_ACCEPT=a, b, ", "HTTP_HOST=h"}},
		{"sorted by name", [][2]string{{"Zeta", "1"}, {"alpha", "2"}, {"X-B", "3"}, {"X", "4"}, {"X-A", "5"}},
			[]string{"HTTP_ALPHA=2", "HTTP_X=4", "HTTP_X_A=5", "HTTP_X_B=3", "HTTP_ZETA=1"}},
		{"cookies joined with semicolons", [][2]string{{"Cookie", "a=1"}, {"cookie", "b=2"}},
			[]string{"HTTP_COOKIE=a=1; b=2"}},
		{"underscore dropped", [][2]string{{"Content-Type", "text/plain"}, {"Content_Type", "evil"}, {"X_A", "1"}},
			[]string{"HTTP_CONTENT_TYPE=text/plain"}},
		{"underscore first is not joined", [][2]string{{"Content_Type", "evil"}, {"Content-Type", "text/plain"}},
			[]string{"HTTP_CONTENT_TYPE=text/plain"}},
		{"not tokens dropped", [][2]string{{"", "e"}, {"Bad Name", "1"}, {"Bad:", "2"}, {"Ba\x00d", "3"}, {"é", "4"}, {"Good", "5"}},
			[]string{"HTTP_GOOD=5"}},
		{"token chars outside letters, digits and - dropped", [][2]string{{"X.Y", "1"}, {"X!", "2"}, {"X~", "3"}, {"X-9", "4"}},
			[]string{"HTTP_X_9=4"}},
		{"unicode fold does not join", [][2]string{{"\u212Aey", "evil"}, {"Key", "good"}, {"\u212Aey", "evil"}},
			[]string{"HTTP_KEY=good"}},
		{"httpoxy", [][2]string{{"Proxy", "http://evil"}, {"proxy", "x"}, {"Proxy-Authorization", "ok"}},
			[]string{"HTTP_PROXY_AUTHORIZATION=ok"}},
		{"control characters removed", [][2]string{{"X", "a\x00b\r\nc\td\x7fe\x1b"}},
			[]string{"HTTP_X=abc\tde"}},
		{"high bytes kept", [][2]string{{"X", "caf\xc3\xa9 \xff"}},
			[]string{"HTTP_X=caf\xc3\xa9 \xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CGI{Headers: tt.headers}.Environ(nil)
			want := append(slices.Clone(cgiVars), tt.want...)
			if !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got[len(cgiVars):], tt.want)
			}
		})
	}
}

// A flood of headers, repeated or not, costs O(n log n), not O(n²).
func TestEnvironManyHeaders(t *testing.T) {
	const n = 200000
	hs := make([][2]string, n)
	for i := range hs {
		hs[i] = [2]string{"X-" + strconv.Itoa(i%1000), "v"}
	}
	env := CGI{Headers: hs}.Environ(nil)
	if got := len(env) - len(cgiVars); got != 1000 {
		t.Fatalf("%d header variables, want 1000", got)
	}
	if want := "HTTP_X_0=v" + strings.Repeat(", v", n/1000-1); env[len(cgiVars)] != want {
		t.Errorf("first variable %.60q..., want %.60q...", env[len(cgiVars)], want)
	}
}

func TestEnvironPass(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("EMPTY", "")
	t.Setenv("lower_case", "ok")
	t.Setenv("MULTI", "a\nb")
	t.Setenv("REMOTE_ADDR", "daemon's")
	t.Setenv("HTTP_HOST", "daemon's")
	tests := []struct {
		name string
		pass []string
		want []string
	}{
		{"set ones, in order", []string{"PATH", "EMPTY"}, []string{"PATH=/usr/bin:/bin", "EMPTY="}},
		{"unset skipped", []string{"WSBRIDGE_UNSET_VARIABLE", "PATH"}, []string{"PATH=/usr/bin:/bin"}},
		{"lower case and values verbatim", []string{"lower_case", "MULTI"}, []string{"lower_case=ok", "MULTI=a\nb"}},
		{"no override of request variables", []string{"REMOTE_ADDR", "HTTP_HOST"}, nil},
		{"once", []string{"PATH", "PATH"}, []string{"PATH=/usr/bin:/bin"}},
		{"not names", []string{"", "A=B", "1X", "A B"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := CGI{RemoteAddr: "192.0.2.1", Headers: [][2]string{{"Host", "h"}}}
			got := c.Environ(tt.pass)
			base := c.Environ(nil)
			want := append(slices.Clone(base), tt.want...)
			if !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got[len(base):], tt.want)
			}
		})
	}
}

var envKey = regexp.MustCompile(`^[A-Z0-9_]+$`)

// FuzzEnviron: no panic; every entry is KEY=VALUE with a key of
// [A-Z0-9_], set once, and a value free of control characters but tab.
func FuzzEnviron(f *testing.F) {
	f.Add("192.0.2.1", "/x?y", "y", "Host", "h", "X-A", "1", "x-a", "2", true)
	f.Add("\x00", "\r\n", "\x7f", "Content_Type", "\x1b[2J", "\u212Aey", "v", "Proxy", "p", false)
	f.Fuzz(func(t *testing.T, addr, uri, query, n1, v1, n2, v2, n3, v3 string, https bool) {
		c := CGI{
			RemoteAddr: addr, URI: uri, Query: query, Method: v1, PathInfo: v2, HTTPS: https,
			Headers: [][2]string{{n1, v1}, {n2, v2}, {n3, v3}, {n1, v3}},
		}
		seen := map[string]bool{}
		for _, kv := range c.Environ([]string{"PATH"}) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !envKey.MatchString(k) {
				t.Fatalf("bad entry %q", kv)
			}
			if seen[k] {
				t.Fatalf("%s set twice", k)
			}
			seen[k] = true
			if k == "PATH" {
				continue // the daemon's, verbatim
			}
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
					t.Fatalf("control character in %q", kv)
				}
			}
		}
	})
}
