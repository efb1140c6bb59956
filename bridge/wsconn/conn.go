package wsconn

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

var (
	_ transport.Client = (*Conn)(nil)
	_ transport.Framed = (*Conn)(nil)
)

// Config holds the limits every WebSocket connection of an endpoint
// shares.
type Config struct {
	MaxMessage   int64         // largest message accepted from a client, in bytes
	ReadBuffer   int           // size of the pooled buffer frames are read into
	PingInterval time.Duration // 0: never ping
	PingTimeout  time.Duration // how long a ping may go unanswered
	CloseTimeout time.Duration // how long to wait for the client's close frame
}

// Conn is the server side of one WebSocket connection, upgraded: a
// transport.Client, and a transport.Framed for the shared mode. Receive
// is called by one goroutine (the input pump); Send by one other (the
// output pump); Close by either, or by the server at shutdown.
type Conn struct {
	conn net.Conn
	cfg  *Config
	pr   poll.Reader
	wrc  syscall.RawConn // what writev(2) writes to; nil: write through conn
	// ownWritev: net.Buffers writes conn with one writev(2) itself (a
	// TCP or unix socket of Go's own).
	ownWritev bool
	pending   []byte // bytes that arrived with the handshake, read first

	wmu       sync.Mutex // serialises frames on the wire
	wbroken   bool       // a write failed part-way: no more frames fit
	closeSent atomic.Bool

	pongMu   sync.Mutex
	pongWant atomic.Bool
	pongLen  int
	pongBuf  *[125]byte  // the latest ping's payload; allocated at the first ping
	pingWant atomic.Bool // the ping timer's ping, sent like a pong

	bytesIn, bytesOut atomic.Int64 // message payload bytes, for the access log

	first atomic.Pointer[transport.CloseError] // the close that ended the connection, for the access log

	rs       recvState    // the reader's state, kept across parks
	parkable bool         // Receive returns transport.ErrParked rather than wait
	lastIn   atomic.Int64 // when bytes last arrived (UnixNano), for the pings
	pingLate atomic.Bool  // a ping went unanswered for PingTimeout
	pinger   *time.Timer  // nil without PingInterval
	wake     func()       // runs a parked reader now; nil: never parked
	closeBy  atomic.Int64 // when the client's close must have come (UnixNano), once closeSent
}

// noteClose records the close that ends the connection, if none is yet.
func (c *Conn) noteClose(code transport.CloseCode, reason string, remote bool) {
	c.first.CompareAndSwap(nil, &transport.CloseError{Code: code, Reason: reason, Remote: remote})
}

// Ended returns the close that ended the connection: the first sent or
// received, or an abnormal closure when there was none.
func (c *Conn) Ended() transport.CloseError {
	if ce := c.first.Load(); ce != nil {
		return *ce
	}
	return transport.CloseError{Code: transport.CloseAbnormal, Remote: true}
}

// New returns the WebSocket connection of conn, whose handshake is done;
// pending holds bytes that arrived after the request head, read first.
func New(conn net.Conn, cfg *Config, pending []byte) *Conn {
	c := &Conn{conn: conn, cfg: cfg, pr: poll.NewReader(conn, cfg.ReadBuffer), pending: pending}
	c.wrc = writeDescriptor(conn, c.pr)
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		c.ownWritev = true
	}
	return c
}

// writeDescriptor returns the descriptor frames may be written to with
// writev(2): the one read from, unless the connection writes elsewhere
// (the pipes a web server relays: it says so with WriteSyscallConn) or
// is layered on it (TLS: the records must go through the connection).
func writeDescriptor(conn net.Conn, pr poll.Reader) syscall.RawConn {
	if w, ok := conn.(interface {
		WriteSyscallConn() (syscall.RawConn, error)
	}); ok {
		rc, err := w.WriteSyscallConn()
		if err != nil {
			return nil
		}
		return rc
	}
	if pr.Layered() {
		return nil
	}
	return pr.RawConn()
}

// recvState is the input side's frame and message state. It lives in the
// Conn, not on a stack, so a reader can park between frames and a new
// goroutine pick up where it left off.
type recvState struct {
	hdr       ws.Header
	inFrame   bool  // inside a data frame's payload
	frameLeft int64 // payload bytes of the current frame not yet read
	maskOff   int   // offset into the mask for the next payload byte
	msgOpen   bool  // a fragmented message awaits continuation frames
	msgFirst  bool  // the next piece opens the message
	msgKind   framing.Kind
	msgLen    int64
	utf       framing.UTF8
}

// Descriptor returns the socket a parked reader waits on, or nil.
func (c *Conn) Descriptor() syscall.RawConn { return c.pr.RawConn() }

// Begin lets Receive return transport.ErrParked when idle (if park), and
// gives the connection the way to wake its parked reader for a close or a
// late ping. It starts the pings, the first time. Called again (a
// descriptor the poller could not take), it only changes park.
func (c *Conn) Begin(park bool, wake func()) {
	c.parkable = park
	if c.wake == nil {
		c.wake = wake
		c.startPings(wake)
	}
}

// Closing reports whether a close went out or a ping is late.
func (c *Conn) Closing() bool { return c.closeSent.Load() || c.pingLate.Load() }

// Late reports whether a ping went unanswered for PingTimeout.
func (c *Conn) Late() bool { return c.pingLate.Load() }

// Counts returns the message payload bytes received and sent.
func (c *Conn) Counts() (in, out int64) { return c.bytesIn.Load(), c.bytesOut.Load() }

// Gone reports whether the client hung up (its FIN or a reset arrived,
// seen with a zero-timeout poll that leaves unread data alone), left a
// ping unanswered, or a close frame has gone out.
func (c *Conn) Gone() bool {
	if c.closeSent.Load() || c.pingLate.Load() {
		return true
	}
	return c.pollNow(unix.POLLRDHUP)&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}

// pollNow returns the socket's poll(2) events of interest (errors and
// hang-ups always), without waiting and without reading: 0 when the
// connection has no descriptor.
func (c *Conn) pollNow(events int16) int16 {
	if c.pr.RawConn() == nil {
		return 0
	}
	return poll.PollNow(c.pr.RawConn(), events)
}

// Finish ends the TCP connection after the closing handshake, the server
// closing first as RFC 6455 7.1.1 asks. Unread bytes are drained for a
// moment so the kernel sends FIN, not a reset that could destroy the close
// frame on its way.
func (c *Conn) Finish() {
	if c.pinger != nil {
		c.pinger.Stop()
	}
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.conn.SetReadDeadline(time.Now().Add(c.cfg.CloseTimeout))
		var sink [512]byte
		for {
			if _, err := c.conn.Read(sink[:]); err != nil {
				break
			}
		}
	}
	_ = c.conn.Close()
}
