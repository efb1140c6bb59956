package shared

import (
	"bytes"
	"testing"

	"github.com/wsbridge/wsbridge/bridge/wsconn"
	"github.com/wsbridge/wsbridge/framing"
)

// FuzzCutToFrame frames random pieces into a blob and cuts a chunk of it
// at a random offset: the cut ends at the end of the frame the offset is
// in (or at the offset, between frames), never inside a frame.
func FuzzCutToFrame(f *testing.F) {
	f.Add([]byte("abc"), uint16(100), uint16(1), uint8(3))
	f.Add(bytes.Repeat([]byte("x"), 70000), uint16(60000), uint16(0), uint8(2))
	f.Add([]byte(""), uint16(0), uint16(0), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint16, at uint16, n uint8) {
		var pieces []framing.Piece
		var bounds []int
		pos := 0
		for i := 0; i < int(n%8)+1; i++ {
			k := min(int(split), len(data))
			p := framing.Piece{Data: data[:k], First: true, Final: true}
			data = data[k:]
			pieces = append(pieces, p)
			pos += len(wsconn.Wire{}.AppendFrame(nil, p))
			bounds = append(bounds, pos)
		}
		b := newBlob(wsconn.Wire{}, pieces)
		defer b.release()
		if len(b.buf) != pos {
			t.Fatalf("blob of %d bytes, frames of %d", len(b.buf), pos)
		}
		c := chunk{b: b, start: 0, off: int(at) % (len(b.buf) + 1), end: len(b.buf)}
		off := c.off
		c.cutToFrame()
		want := len(b.buf)
		if off == 0 {
			want = 0
		}
		for i, e := range bounds {
			if e == off {
				want = off
				break
			}
			if e > off && (i == 0 && off > 0 || i > 0 && bounds[i-1] < off) {
				want = e
				break
			}
		}
		if c.end != want {
			t.Fatalf("cut at %d of frames ending %v: end %d, want %d", off, bounds, c.end, want)
		}
	})
}
