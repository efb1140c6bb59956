package memconn

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// Peer is the test's end of a pair: it sends messages and reads what the
// server sends, as a client would. One goroutine uses it.
type Peer struct {
	c    *Conn
	rbuf []byte // read, not yet parsed
	msg  []byte // the message being reassembled
}

// Message is one whole message, or the server's close.
type Message struct {
	Kind   framing.Kind
	Data   []byte
	Close  bool
	Code   transport.CloseCode
	Reason string
}

// ErrEnded says the server ended the connection (Finish), or nothing came
// in time.
var ErrEnded = errors.New("memconn: no more from the server")

// Send sends a message in pieces of at most frame bytes (0: one piece).
// It blocks while the server does not read (backpressure) and fails once
// the server has finished with the connection.
func (p *Peer) Send(kind framing.Kind, msg []byte, frame int) error {
	if frame <= 0 {
		frame = max(len(msg), 1)
	}
	first := true
	for first || len(msg) > 0 {
		k := min(frame, len(msg))
		piece := framing.Piece{Data: append([]byte(nil), msg[:k]...), Kind: kind, First: first, Final: k == len(msg)}
		msg, first = msg[k:], false
		if err := p.push(inbound{pieces: []framing.Piece{piece}}); err != nil {
			return err
		}
	}
	return nil
}

// Close sends the peer's close.
func (p *Peer) Close(code transport.CloseCode, reason string) error {
	return p.push(inbound{close: &transport.CloseError{Code: code, Reason: reason, Remote: true}})
}

// Hangup leaves without a close, as a client whose connection drops.
func (p *Peer) Hangup() {
	if p.c.hungUp.CompareAndSwap(false, true) {
		close(p.c.in)
		p.c.out.end(true)
	}
}

func (p *Peer) push(ev inbound) error {
	if p.c.hungUp.Load() {
		return ErrEnded
	}
	select {
	case p.c.in <- ev:
		return nil
	case <-p.c.done:
		return ErrEnded
	}
}

// Next returns the next whole message or the close, waiting up to
// timeout.
func (p *Peer) Next(timeout time.Duration) (Message, error) {
	end := time.Now().Add(timeout)
	for {
		for len(p.rbuf) >= headerLen {
			n := Wire{}.FrameLen(p.rbuf)
			if len(p.rbuf) < n {
				break
			}
			flags, data := p.rbuf[0], p.rbuf[headerLen:n]
			p.rbuf = p.rbuf[n:]
			if flags&flagClose != 0 {
				m := Message{Close: true}
				if len(data) >= 2 {
					m.Code, m.Reason = transport.CloseCode(binary.BigEndian.Uint16(data)), string(data[2:])
				}
				return m, nil
			}
			if flags&flagFirst != 0 {
				p.msg = p.msg[:0]
			}
			p.msg = append(p.msg, data...)
			if flags&flagFinal != 0 {
				kind := framing.Binary
				if flags&flagText != 0 {
					kind = framing.Text
				}
				return Message{Kind: kind, Data: append([]byte(nil), p.msg...)}, nil
			}
		}
		b, ok := p.c.out.read(time.Until(end))
		if !ok {
			return Message{}, ErrEnded
		}
		p.rbuf = append(p.rbuf, b...)
	}
}
