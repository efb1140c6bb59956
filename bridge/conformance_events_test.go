package bridge

// What the rows of TestConformance read: the server's frames, checked
// against what a server may send, as events.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// confEvent is what the server sent, as the client sees it: a whole
// message, a control frame, or the end of the connection.
type confEvent struct {
	kind    evKind
	data    []byte
	code    int   // evClose: the code; noStatus for none
	partial int   // evClose: bytes of a message left unfinished by the close
	err     error // evEnd: nil for an orderly TCP close; evBad: the broken rule
}

type evKind uint8

const (
	evText evKind = iota
	evBinary
	evPing
	evPong
	evClose
	evEnd // the TCP connection ended, or the row's deadline passed
	evBad // the server broke a rule
)

func textMsg(s string) confEvent   { return confEvent{kind: evText, data: []byte(s)} }
func binaryMsg(b []byte) confEvent { return confEvent{kind: evBinary, data: b} }
func pongMsg(s string) confEvent   { return confEvent{kind: evPong, data: []byte(s)} }

func (e confEvent) String() string {
	name := [...]string{"text", "binary", "ping", "pong", "close", "end", "bad"}[e.kind]
	switch e.kind {
	case evClose:
		return fmt.Sprintf("close %d", e.code)
	case evEnd, evBad:
		return fmt.Sprintf("%s: %v", name, e.err)
	}
	if len(e.data) <= 32 {
		return fmt.Sprintf("%s %q", name, e.data)
	}
	return fmt.Sprintf("%s %d bytes %q...", name, len(e.data), e.data[:16])
}

func sameEvents(a, b []confEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].kind != b[i].kind || !bytes.Equal(a[i].data, b[i].data) {
			return false
		}
	}
	return true
}

func eventsString(es []confEvent) string {
	if len(es) > 8 {
		return fmt.Sprintf("%d events: %v ... %v", len(es), es[:4], es[len(es)-2:])
	}
	return fmt.Sprint(es)
}

// readEvents reads the server's frames until the connection ends or the
// deadline passes, checks each against what a server may send, and
// reports messages (reassembled), control frames and the end on events,
// which it closes when done. After a close frame nothing may follow but
// the TCP close.
func readEvents(c *wstest.Conn, deadline time.Time, events chan<- confEvent) {
	defer close(events)
	bad := func(format string, args ...any) {
		events <- confEvent{kind: evBad, err: fmt.Errorf(format, args...)}
	}
	var (
		msg    []byte
		msgOp  byte
		inMsg  bool
		frames int
	)
	for {
		f, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if err == nil && inMsg {
				err = fmt.Errorf("TCP closed inside a message, without a close frame")
			}
			events <- confEvent{kind: evEnd, err: err}
			return
		}
		switch {
		case !f.Unmasked:
			bad("server frame %d is masked", frames)
			return
		case f.RSV != 0:
			bad("server frame %d has RSV bits %03b", frames, f.RSV)
			return
		}
		frames++
		switch f.Op {
		case wstest.OpText, wstest.OpBinary:
			if inMsg {
				bad("data frame (opcode %d) inside a fragmented message", f.Op)
				return
			}
			msg, msgOp, inMsg = f.Payload, f.Op, true
		case wstest.OpContinuation:
			if !inMsg {
				bad("continuation frame with no message open")
				return
			}
			msg = append(msg, f.Payload...)
		case wstest.OpPing, wstest.OpPong, wstest.OpClose:
			if !f.Fin || len(f.Payload) > 125 {
				bad("control frame (opcode %d): fin %v, %d bytes", f.Op, f.Fin, len(f.Payload))
				return
			}
			if f.Op != wstest.OpClose {
				kind := evPing
				if f.Op == wstest.OpPong {
					kind = evPong
				}
				events <- confEvent{kind: kind, data: f.Payload}
				continue
			}
			ev := confEvent{kind: evClose, code: f.CloseCode(), partial: len(msg)}
			switch {
			case len(f.Payload) == 1:
				bad("close frame with a 1-byte payload")
				return
			case len(f.Payload) >= 2 && !sendableCode(ev.code):
				bad("close code %d may not be sent", ev.code)
				return
			case len(f.Payload) >= 2 && !utf8.ValidString(f.CloseReason()):
				bad("close reason is not UTF-8: %q", f.CloseReason())
				return
			}
			events <- ev
			n, err := c.ReadEOF(time.Until(deadline))
			if err == nil && n > 0 {
				err = fmt.Errorf("%d bytes after the close frame", n)
			}
			events <- confEvent{kind: evEnd, err: err}
			return
		default:
			bad("reserved opcode %d", f.Op)
			return
		}
		if f.Fin {
			kind := evBinary
			if msgOp == wstest.OpText {
				kind = evText
				if !utf8.Valid(msg) {
					bad("text message of %d bytes is not UTF-8", len(msg))
					return
				}
			}
			events <- confEvent{kind: kind, data: msg}
			msg, inMsg = nil, false
		}
	}
}

// sendableCode reports whether an endpoint may put code in a close frame:
// RFC 6455 7.4, with 1012 to 1014 registered with IANA since.
func sendableCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}
