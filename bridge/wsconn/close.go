package wsconn

import (
	"time"

	"github.com/gobwas/ws"

	"github.com/wsbridge/wsbridge/bridge/transport"
)

// Close starts the closing handshake: it sends a close frame with code and
// reason (once; later calls do nothing) and bounds how long Receive waits
// for the client's answer. It does not wait for a writer stuck on a client
// that does not read: the write deadline unblocks it.
func (c *Conn) Close(code transport.CloseCode, reason string) error {
	return c.sendClose(code, reason)
}

func (c *Conn) sendClose(code transport.CloseCode, reason string) error {
	if c.closeSent.Load() {
		return nil
	}
	deadline := time.Now().Add(c.cfg.CloseTimeout)
	_ = c.conn.SetWriteDeadline(deadline)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return nil
	}
	c.noteClose(code, reason, false)
	var body []byte
	if code != 0 {
		body = ws.NewCloseFrameBody(ws.StatusCode(code), truncReason(reason))
	}
	hdr := appendHeader(make([]byte, 0, 2), ws.OpClose, true, len(body))
	err := c.writeLocked([][]byte{hdr, body})
	c.closeBy.Store(deadline.UnixNano())
	c.closeSent.Store(true)
	_ = c.conn.SetReadDeadline(deadline)
	if c.wake != nil {
		c.wake() // a parked reader must wait for the answer, with the deadline
	}
	return err
}

// truncReason cuts a close reason to the 123 bytes a close frame can carry,
// at a UTF-8 boundary.
func truncReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}
