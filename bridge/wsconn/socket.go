package wsconn

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// notSentLimit bounds the bytes a shared child's client's socket holds
// that TCP has not sent (TCP_NOTSENT_LOWAT) to net.core.wmem_max:
// SO_SNDBUF can ask for a buffer of twice that, which leaves a client cut
// off room for its close (see RoomForClose). What waits for a slow client
// beyond it waits in its queue, where it can be dropped.
var notSentLimit = sync.OnceValue(func() int { return min(max(wmemMax(), 128<<10), 4<<20) })

// wmemMax returns net.core.wmem_max, or Linux's default.
func wmemMax() int {
	b, err := os.ReadFile("/proc/sys/net/core/wmem_max")
	if n, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && n > 0 {
		return n
	}
	return 212992
}

// LimitUnsent sets TCP_NOTSENT_LOWAT where the connection is TCP (see
// notSentLimit).
func (c *Conn) LimitUnsent() {
	if rc := c.pr.RawConn(); rc != nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLimit())
		})
	}
}

// RoomForClose lets the socket take n more bytes and a close frame even
// while the client reads nothing: it lifts the unsent limit and, where
// the send buffer is small (a client slow from the start never let TCP
// grow it), grows it by what is needed. Bytes the socket holds already
// cannot be recalled; the client reads them first.
func (c *Conn) RoomForClose(n int) {
	rc := c.pr.RawConn()
	if rc == nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 0) // 0: the system's, no limit
		sndbuf, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		if err != nil {
			return
		}
		queued, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		if err != nil {
			return
		}
		// The kernel counts buffers with their overhead: twice the bytes
		// is a safe guess. SO_SNDBUF doubles what it is given, up to
		// twice net.core.wmem_max, which notSentLimit leaves room in.
		if want := 2*(queued+n) + 4096; want > sndbuf {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, min(want/2, wmemMax()))
		}
	})
}
