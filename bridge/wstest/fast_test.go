package wstest

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

// serverFrames writes payload as a server would: unmasked, in two
// fragments when split is inside it.
func serverFrames(payload []byte, split int) []byte {
	var b bytes.Buffer
	if split <= 0 || split >= len(payload) {
		_ = ws.WriteFrame(&b, ws.NewTextFrame(payload))
		return b.Bytes()
	}
	_ = ws.WriteFrame(&b, ws.NewFrame(ws.OpText, false, payload[:split]))
	_ = ws.WriteFrame(&b, ws.NewFrame(ws.OpContinuation, true, payload[split:]))
	return b.Bytes()
}

// reading is a Conn that reads data and has no connection.
func reading(data []byte) *Conn {
	return &Conn{R: bufio.NewReaderSize(bytes.NewReader(data), 4096)}
}

// FuzzSkipMessage checks the load generator's frame reader never panics or
// loops on any input, and reads back whatever a server could send.
func FuzzSkipMessage(f *testing.F) {
	f.Add([]byte("hello"), 2)
	f.Add(bytes.Repeat([]byte("x"), 70000), 30000)
	f.Add([]byte{}, 0)
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1}, 0)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		// Arbitrary bytes: any error is fine, a panic or a hang is not.
		c := reading(data)
		for range 100 {
			if _, err := c.SkipMessage(nil); err != nil {
				break
			}
		}
		// A real message comes back whole, fragmented or not.
		n, err := reading(serverFrames(data, split)).SkipMessage(data)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("SkipMessage = %d, %v; want %d, nil", n, err, len(data))
		}
	})
}

// FuzzParseHeader checks the header parser against gobwas/ws's on any
// bytes, and that it reads back every header AppendFrame writes.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x05}, true, byte(0), byte(1), int64(0))
	f.Add([]byte{0x82, 0xFE, 0x01, 0x00}, false, byte(7), byte(0xF), int64(126))
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1}, true, byte(1), byte(2), int64(1<<40))
	f.Add([]byte{0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}, false, byte(2), byte(8), int64(65536))
	f.Fuzz(func(t *testing.T, b []byte, fin bool, rsv, op byte, length int64) {
		h, size, err := ParseHeader(b)
		if err == nil {
			if size < 2 || size > MaxHeaderSize || size > len(b) {
				t.Fatalf("ParseHeader(%x): size %d", b, size)
			}
			want, werr := ws.ReadHeader(bytes.NewReader(b))
			if werr != nil || want.Fin != h.Fin || want.Rsv != h.RSV || byte(want.OpCode) != h.Op ||
				want.Masked != h.Masked || want.Mask != h.Mask || want.Length != h.Length {
				t.Fatalf("ParseHeader(%x) = %+v, gobwas/ws reads %+v %v", b, h, want, werr)
			}
		}
		// What AppendFrame writes reads back.
		if length < 0 {
			length = -(length + 1)
		}
		for _, unmasked := range []bool{false, true} {
			in := Frame{Fin: fin, RSV: rsv & 7, Op: op & 0xF, Unmasked: unmasked, Length: length}
			wire := AppendFrame(nil, in)
			h, size, err := ParseHeader(wire)
			if err != nil || size != len(wire) || h.Fin != in.Fin || h.RSV != in.RSV || h.Op != in.Op || h.Masked == unmasked || h.Length != length {
				t.Fatalf("%+v wrote %x, read back %+v %d %v", in, wire, h, size, err)
			}
		}
	})
}

// TestFramesMasked checks prebuilt client frames decode to the payload.
func TestFramesMasked(t *testing.T) {
	for _, size := range []int{0, 64, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("ab-"), size)[:size]
		fr := NewFrames(OpText, payload, 3)
		r := bytes.NewReader(fr.First(2))
		for i := range 2 {
			h, err := ws.ReadHeader(r)
			if err != nil {
				t.Fatalf("size %d frame %d: %v", size, i, err)
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(r, p); err != nil {
				t.Fatal(err)
			}
			ws.Cipher(p, h.Mask, 0)
			if !h.Fin || !h.Masked || h.OpCode != ws.OpText || !bytes.Equal(p, payload) {
				t.Fatalf("size %d frame %d: header %+v, payload ok %v", size, i, h, bytes.Equal(p, payload))
			}
		}
		if r.Len() != 0 {
			t.Fatalf("size %d: %d bytes left over", size, r.Len())
		}
	}
}

// TestSkipMessageAllocates checks the benchmark's read path allocates
// nothing, so it costs little beside the server it measures.
func TestSkipMessageAllocates(t *testing.T) {
	payload := bytes.Repeat([]byte("z"), 1000)
	wire := bytes.Repeat(serverFrames(payload, 300), 200)
	r := bytes.NewReader(wire)
	c := &Conn{R: bufio.NewReaderSize(r, 4096)}
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := c.SkipMessage(payload); err != nil || n != int64(len(payload)) {
			t.Fatalf("SkipMessage = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("SkipMessage: %v allocations a message, want 0", allocs)
	}
}
