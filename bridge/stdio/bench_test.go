package stdio

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/wsbridge/wsbridge/framing"
)

// cutBuffer is how much stdout one Cut has before it: the default
// --out-buffer.
const cutBuffer = 128 << 10

// stdout returns a buffer of about cutBuffer bytes (at least two
// messages) of whole text messages of size bytes each, framed as a child
// writes them with framing name, and how many it holds.
func stdout(name string, size int) ([]byte, int) {
	var buf []byte
	n := 0
	payload := bytes.Repeat([]byte("m"), size)
	for {
		var rec []byte
		switch name {
		case framing.Line:
			rec = append(payload[:size-1:size-1], '\n')
		case framing.Len32:
			rec = append(framing.Len32Encoder{}.AppendPrefix(nil, framing.Piece{Data: payload, Kind: framing.Text, First: true, Final: true}), payload...)
		case framing.Mux:
			rec = append(framing.AppendMuxHeader(nil, framing.Text, uint32(n%8+1), size), payload...)
		case framing.Raw:
			rec = payload
		}
		if len(buf)+len(rec) > cutBuffer && n >= 2 {
			return buf, n
		}
		buf = append(buf, rec...)
		n++
	}
}

// BenchmarkCut cuts a full buffer of the child's stdout into pieces with
// each framing, as a session's output pump and the shared fan-out do
// after every read.
func BenchmarkCut(b *testing.B) {
	for _, name := range []string{framing.Line, framing.Len32, framing.Mux, framing.Raw} {
		sizes := []int{16, 1 << 10, 64 << 10}
		if name == framing.Raw {
			sizes = []int{cutBuffer / 2} // raw has no messages: what a read finds is one
		}
		for _, size := range sizes {
			b.Run(fmt.Sprintf("%s/%dB", name, size), func(b *testing.B) {
				data, msgs := stdout(name, size)
				dec, _, err := framing.New(name)
				if err != nil {
					b.Fatal(err)
				}
				o := Cutter{Dec: dec}
				got := 0
				send := func(ps []framing.Piece) {
					for _, p := range ps {
						if p.Final {
							got++
						}
					}
				}
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					o.Buf, o.End = data, len(data)
					if !o.Cut(send) {
						b.Fatal(o.Err)
					}
				}
				b.StopTimer()
				if name != framing.Raw && got%msgs != 0 {
					b.Fatalf("cut %d messages, not a multiple of the %d per buffer", got, msgs)
				}
				if o.End != 0 {
					b.Fatalf("Cut left %d bytes", o.End)
				}
				if name != framing.Raw {
					b.ReportMetric(float64(msgs), "msgs/op")
				}
			})
		}
	}
}
