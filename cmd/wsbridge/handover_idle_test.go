package main

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// TestLighttpdIdle: lighttpd cuts an upgraded connection that is idle for
// server.max-read-idle (60 s by default; 2 s here), as it would any
// other; the daemon's --ping-interval keeps one open, which is what the
// README's lighttpd recipe says to set.
func TestLighttpdIdle(t *testing.T) {
	const idle = 2 // server.max-read-idle, seconds
	s := lighttpdSenders[0]
	sock := handoverSocket(t, s)
	w := startLighttpd(t, lighttpdTestConf+"server.max-read-idle = 2\nserver.max-write-idle = 2\n"+
		recipe(t, "lighttpd/lighttpd.conf", "{{DIR}}/cgi-bin", sock))
	install(t, "lighttpd/install.sh", w.Dir+"/cgi-bin", s.env(t, sock)...)

	// idleFor holds a session idle for d, answering pings, and says
	// whether it is still open after.
	idleFor := func(t *testing.T, d time.Duration) bool {
		c := wstest.MustDial(t, w.Addr, wstest.Options{Path: "/ws/echo"})
		defer c.Conn.Close()
		if err := c.WriteMessage(wstest.OpText, []byte("before"), 0); err != nil {
			t.Fatal(err)
		}
		if f, err := c.ReadFrame(10 * time.Second); err != nil || string(f.Payload) != "before" {
			t.Fatalf("echo %+v, %v", f, err)
		}
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			f, err := c.ReadFrame(time.Until(end))
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
			case err != nil:
				return false // cut
			case f.Op == wstest.OpPing:
				if err := c.WriteFrame(true, wstest.OpPong, f.Payload); err != nil {
					return false
				}
			case f.Op == wstest.OpClose:
				return false
			}
		}
		if err := c.WriteMessage(wstest.OpText, []byte("after"), 0); err != nil {
			return false
		}
		f, err := c.ReadFrame(10 * time.Second)
		return err == nil && string(f.Payload) == "after"
	}
	t.Run("no pings: cut", func(t *testing.T) {
		startHandoverDaemon(t, "lighttpd", sock, childBin, "echo")
		if idleFor(t, 3*idle*time.Second) {
			t.Fatal("lighttpd kept an idle upgraded connection past server.max-read-idle: the recipe's --ping-interval advice is moot")
		}
	})
	t.Run("pings: kept", func(t *testing.T) {
		startHandoverDaemon(t, "lighttpd", sock, "--ping-interval=500ms", childBin, "echo")
		if !idleFor(t, 3*idle*time.Second) {
			t.Fatal("an idle session with --ping-interval under lighttpd's idle timeout was cut")
		}
	})
}
