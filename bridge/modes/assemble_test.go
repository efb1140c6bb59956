package modes

import (
	"bytes"
	"testing"

	"github.com/wsbridge/wsbridge/framing"
)

// FuzzAssembler feeds random cuts of messages to an assembler: it emits
// exactly the whole messages, each once, and never a part of one.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte("hello world"), uint8(3), uint8(0))
	f.Add([]byte("one"), uint8(1), uint8(2))
	f.Add(bytes.Repeat([]byte("z"), 5000), uint8(200), uint8(7))
	f.Fuzz(func(t *testing.T, msg []byte, cut uint8, mode uint8) {
		budget := &Budget{Limit: 1 << 20}
		a := Assembler{Budget: budget, Max: 1 << 20}
		n := max(int(cut), 1)
		var pieces []framing.Piece
		for first := true; first || len(msg) > 0; first = false {
			k := min(n, len(msg))
			pieces = append(pieces, framing.Piece{Data: msg[:k], First: first, Final: k == len(msg)})
			msg = msg[k:]
		}
		whole := bytes.Join(func() [][]byte {
			var d [][]byte
			for _, p := range pieces {
				d = append(d, p.Data)
			}
			return d
		}(), nil)
		if mode%2 == 1 && len(pieces) > 1 {
			pieces = pieces[:len(pieces)-1] // never finished
		}
		var got [][]byte
		for i := range pieces {
			if err := a.Feed(pieces[i:i+1:i+1], func(w []framing.Piece) {
				for _, p := range w {
					if !p.First || !p.Final {
						t.Fatalf("emitted a part: %+v", p)
					}
					got = append(got, bytes.Clone(p.Data))
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		a.Release()
		finished := pieces[len(pieces)-1].Final
		switch {
		case finished && (len(got) != 1 || !bytes.Equal(got[0], whole)):
			t.Fatalf("got %q, want %q once", got, whole)
		case !finished && len(got) != 0:
			t.Fatalf("an unfinished message was emitted: %q", got)
		}
		if budget.Held() != 0 {
			t.Fatalf("%d bytes still charged after release", budget.Held())
		}
	})
}
