package bridge

import (
	"context"
	"time"

	"github.com/wsbridge/wsbridge/bridge/transport"
)

// accessLine logs one line for a finished connection: who closed it, with
// which code and why, and the child it had of its own, if any.
func (s *Server) accessLine(id uint64, remote string, began time.Time, c transport.Client, pid int, exit string) {
	closed := c.Ended()
	by := "server"
	if closed.Remote {
		by = "client"
	}
	in, out := c.Counts()
	attrs := []any{
		"id", id, "remote", remote,
		"duration", time.Since(began).Round(time.Millisecond),
		"in", in, "out", out,
		"close", closed.Code, "close_by", by,
	}
	if closed.Reason != "" {
		attrs = append(attrs, "reason", closed.Reason)
	}
	if pid != 0 {
		attrs = append(attrs, "pid", pid, "exit", exit)
	}
	s.log.Log(context.Background(), LevelAccess, "session", attrs...)
}
