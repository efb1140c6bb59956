package wsconn

import (
	"bytes"
	"errors"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsbridge/wsbridge/framing"
)

// clientFrame returns a masked client frame.
func clientFrame(t *testing.T, fin bool, rsv byte, op ws.OpCode, payload []byte) []byte {
	t.Helper()
	p := bytes.Clone(payload)
	mask := [4]byte{9, 8, 7, 6}
	ws.Cipher(p, mask, 0)
	var b bytes.Buffer
	if err := ws.WriteHeader(&b, ws.Header{Fin: fin, Rsv: rsv, OpCode: op, Masked: true, Mask: mask, Length: int64(len(p))}); err != nil {
		t.Fatal(err)
	}
	b.Write(p)
	return b.Bytes()
}

type received struct {
	msgs []string
	kind []framing.Kind
}

// receiveAll runs Receive on a wsConn fed with wire (in one write) and
// returns what it delivered, reassembled, the bytes the server wrote back
// and Receive's error.
func receiveAll(t *testing.T, wire []byte, cfg Config) (received, []byte, error) {
	t.Helper()
	server, client := net.Pipe()
	defer client.Close()
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = 4096
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = time.Second
	}
	c := New(server, &cfg, nil)
	var out bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(&out, client)
	}()
	go func() { _, _ = client.Write(wire) }()
	var got received
	var cur []byte
	err := c.Receive(func(ps []framing.Piece) error {
		for _, p := range ps {
			cur = append(cur, p.Data...)
			if p.Final {
				got.msgs = append(got.msgs, string(cur))
				got.kind = append(got.kind, p.Kind)
				cur = nil
			}
		}
		return nil
	})
	server.Close()
	<-readDone
	return got, out.Bytes(), err
}

func TestReceive(t *testing.T) {
	text := func(s string) []byte { return clientFrame(t, true, 0, ws.OpText, []byte(s)) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name     string
		wire     []byte
		cfg      Config
		wantMsgs []string
		wantCode transport.CloseCode
	}{
		{"messages then close", cat(text("a"), text("bc"), clientFrame(t, true, 0, ws.OpClose, []byte{3, 232})),
			Config{}, []string{"a", "bc"}, transport.CloseNormal},
		{"fragments with a ping between", cat(clientFrame(t, false, 0, ws.OpText, []byte("he")),
			clientFrame(t, true, 0, ws.OpPing, []byte("p")), clientFrame(t, true, 0, ws.OpContinuation, []byte("llo")),
			clientFrame(t, true, 0, ws.OpClose, nil)), Config{}, []string{"hello"}, transport.CloseNoStatus},
		{"valid message before a protocol error still delivered", cat(text("Hello"), clientFrame(t, true, 4, ws.OpText, []byte("x"))),
			Config{}, []string{"Hello"}, transport.CloseProtocolError},
		{"valid message before a too big one", cat(text("ok"), text("0123456789")),
			Config{MaxMessage: 5}, []string{"ok"}, transport.CloseMessageTooBig},
		{"invalid UTF-8", cat(text("ok"), text("\xff")), Config{}, []string{"ok"}, transport.CloseInvalidPayload},
		{"unmasked frame", cat(text("ok"), []byte{0x81, 0x01, 'x'}), Config{}, []string{"ok"}, transport.CloseProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := receiveAll(t, tc.wire, tc.cfg)
			var ce *transport.CloseError
			if !errors.As(err, &ce) || ce.Code != tc.wantCode {
				t.Fatalf("Receive = %v, want close %d", err, tc.wantCode)
			}
			if len(got.msgs) != len(tc.wantMsgs) {
				t.Fatalf("delivered %q, want %q", got.msgs, tc.wantMsgs)
			}
			for i := range got.msgs {
				if got.msgs[i] != tc.wantMsgs[i] || got.kind[i] != framing.Text {
					t.Fatalf("delivered %q, want %q", got.msgs, tc.wantMsgs)
				}
			}
		})
	}
}

// TestPongWhileWriterBlocked checks a ping is answered once the writer
// frees the lock, and that the input side never waits for it.
func TestPongWhileWriterBlocked(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	defer server.Close()
	cfg := Config{ReadBuffer: 4096, CloseTimeout: time.Second}
	c := New(server, &cfg, nil)
	c.wmu.Lock() // the output pump is stuck on a slow client
	delivered := make(chan struct{})
	go func() {
		_ = c.Receive(func([]framing.Piece) error { close(delivered); return nil })
	}()
	go func() {
		_, _ = client.Write(bytes.Join([][]byte{
			clientFrame(t, true, 0, ws.OpPing, []byte("p1")), clientFrame(t, true, 0, ws.OpText, []byte("data")),
		}, nil))
	}()
	select {
	case <-delivered: // the input pump went on past the ping
	case <-time.After(5 * time.Second):
		t.Fatal("the input side waited for the write lock")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.wmu.Unlock()
		c.controlAfterUnlock()
	}()
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(client, hdr); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, hdr[1])
	if _, err := io.ReadFull(client, p); err != nil {
		t.Fatal(err)
	}
	if ws.OpCode(hdr[0]&0x0f) != ws.OpPong || string(p) != "p1" {
		t.Fatalf("got frame % x %q, want pong p1", hdr, p)
	}
}
