package examples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/framing"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// TestHelloCGI runs hello.cgi the way --cgi-per-message runs a script, once
// per message with the CGI variables set, and reads its output with the
// parser the bridge uses.
func TestHelloCGI(t *testing.T) {
	shells := shellRuns(t, "hello.cgi")
	// cgiEnv is what a web server sets for a POST of n bytes.
	cgiEnv := func(n string) []string {
		env := []string{"GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=POST", "REMOTE_ADDR=192.0.2.7",
			"SERVER_PROTOCOL=HTTP/1.1", "SCRIPT_NAME=/hello.cgi", "CONTENT_TYPE=text/plain"}
		if n != "" {
			env = append(env, "CONTENT_LENGTH="+n)
		}
		return env
	}
	reply := func(msg, upper string) string {
		return fmt.Sprintf("hello from hello.cgi\nmethod: POST\nfrom: 192.0.2.7\nyou sent: %s\nupper-cased: %s\n", msg, upper)
	}
	cases := []struct {
		name   string
		length string // CONTENT_LENGTH; "": unset
		stdin  string
		body   string
	}{
		{"a message", "11", "hello world", reply("hello world", "HELLO WORLD")},
		{"only CONTENT_LENGTH bytes are read", "5", "hello and more", reply("hello", "HELLO")},
		{"an empty message", "0", "", reply("", "")},
		{"not ASCII", "7", "héllo!", reply("héllo!", "HéLLO!")},
		{"shell characters are data", "16", `$(id) * \n %s "`, reply(`$(id) * \n %s "`, `$(ID) * \N %S "`)},
		{"no CONTENT_LENGTH: all of stdin", "", "all of it", reply("all of it", "ALL OF IT")},
	}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			argv := sh.argv(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					out, errOut, code := runChildEnv(t, cgiEnv(tc.length), []byte(tc.stdin), argv...)
					if code != 0 || len(errOut) > 0 {
						t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errOut)
					}
					r, err := framing.ParseCGIResponse(out)
					if err != nil || !r.HasHeader || r.ContentType != "text/plain" || r.Status != 200 || !r.IsText() {
						t.Fatalf("output %q: %+v, %v; want a text/plain CGI response", out, r, err)
					}
					if string(r.Body) != tc.body {
						t.Fatalf("body %q, want %q", r.Body, tc.body)
					}
				})
			}
			t.Run("fail", func(t *testing.T) {
				out, errOut, code := runChildEnv(t, cgiEnv("4"), []byte("fail"), argv...)
				if code != 3 || len(out) != 0 || string(errOut) != "hello.cgi: failing on purpose, as asked\n" {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit 3, nothing, the reason", code, out, errOut)
				}
			})
		})
	}
	// The slow runs wait together, after the rest.
	for _, sh := range shells {
		t.Run(sh.name+"/slow", func(t *testing.T) {
			argv := sh.argv(t)
			t.Parallel()
			start := time.Now()
			out, _, code := runChildEnv(t, cgiEnv("4"), []byte("slow"), argv...)
			if took := time.Since(start); took < 5*time.Second || code != 0 || !bytes.Contains(out, []byte("you sent: slow\n")) {
				t.Fatalf("took %v, exit %d, output %q; want 5s or more, exit 0, the reply", took, code, out)
			}
		})
	}
}

// TestHelloCGIBehindWsbridge runs hello.cgi under the real wsbridge
// --cgi-per-message: one run per message, replies in order, a failing run
// answered by the bridge's error in its place.
func TestHelloCGIBehindWsbridge(t *testing.T) {
	reply := func(msg, upper string) string {
		return fmt.Sprintf("hello from hello.cgi\nmethod: POST\nfrom: 127.0.0.1\nyou sent: %s\nupper-cased: %s\n", msg, upper)
	}
	for _, sh := range shellRuns(t, "hello.cgi") {
		t.Run(sh.name, func(t *testing.T) {
			b := startBridge(t, append([]string{"--cgi-per-message"}, sh.argv(t)...)...)
			c := dial(t, b, "/")
			// Sent back to back, so the scripts run at once: the replies
			// still come in order, the failure's in its place.
			for _, msg := range []string{"hello world", "fail", "héllo\nwörld"} {
				say(t, c, msg)
			}
			c.ExpectMessage(t, wstest.OpText, reply("hello world", "HELLO WORLD"))
			var failed struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if msg := nextText(t, c); json.Unmarshal([]byte(msg), &failed) != nil ||
				failed.Error != "Bad Gateway" || failed.Status != 502 || failed.Detail != "the script failed: exit status 3" {
				t.Fatalf("for the failing script got %q, want the bridge's JSON error, 502", msg)
			}
			c.ExpectMessage(t, wstest.OpText, reply("héllo\nwörld", "HéLLO\nWöRLD"))
			// The connection outlives the failure.
			say(t, c, "again")
			c.ExpectMessage(t, wstest.OpText, reply("again", "AGAIN"))
			closeNormally(t, c)
			b.stop(t)
			if log := b.stderr.String(); !strings.Contains(log, "hello.cgi: failing on purpose, as asked") {
				t.Errorf("the script's stderr is not in wsbridge's log:\n%s", log)
			}
		})
	}
}
