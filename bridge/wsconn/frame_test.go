package wsconn

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gobwas/ws"
)

func TestParseHeader(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	for _, tc := range []struct {
		name string
		h    ws.Header
	}{
		{"text 0 masked", ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask}},
		{"binary 125", ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 125, Masked: true, Mask: mask}},
		{"16-bit length", ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 126, Masked: true, Mask: mask}},
		{"16-bit max", ws.Header{OpCode: ws.OpText, Length: 0xffff, Masked: true, Mask: mask}},
		{"64-bit length", ws.Header{OpCode: ws.OpContinuation, Length: 1 << 20, Masked: true, Mask: mask}},
		{"unmasked", ws.Header{Fin: true, OpCode: ws.OpPing, Length: 3}},
		{"rsv bits", ws.Header{Fin: true, Rsv: 5, OpCode: ws.OpText, Length: 1, Masked: true, Mask: mask}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := ws.WriteHeader(&b, tc.h); err != nil {
				t.Fatal(err)
			}
			wire := b.Bytes()
			got, n, err := parseHeader(append(wire, 0xAA)) // a payload byte follows
			if err != nil || n != len(wire) || got != tc.h {
				t.Fatalf("parseHeader = %+v, %d, %v; want %+v, %d", got, n, err, tc.h, len(wire))
			}
			for i := range len(wire) {
				if _, _, err := parseHeader(wire[:i]); !errors.Is(err, errIncomplete) {
					t.Fatalf("parseHeader of %d of %d bytes: err %v, want errIncomplete", i, len(wire), err)
				}
			}
		})
	}
}

func TestParseHeaderRejectsLengthTopBit(t *testing.T) {
	wire := []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}
	if _, _, err := parseHeader(wire); !errors.Is(err, errFrameTooLong) {
		t.Fatalf("err = %v, want errFrameTooLong", err)
	}
}

func TestAppendHeaderMatchesGobwas(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 1 << 30} {
		for _, fin := range []bool{true, false} {
			var want bytes.Buffer
			_ = ws.WriteHeader(&want, ws.Header{Fin: fin, OpCode: ws.OpText, Length: int64(n)})
			if got := appendHeader(nil, ws.OpText, fin, n); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("appendHeader(len %d, fin %v) = % x, want % x", n, fin, got, want.Bytes())
			}
		}
	}
}

// FuzzParseHeader checks parseHeader against gobwas/ws's reader, which it
// replaces on the hot path: same header, same size, never a panic.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4})
	f.Add([]byte{0x02, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9})
	f.Add([]byte{0x88})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseHeader(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("n = %d with error %v", n, err)
			}
			return
		}
		if n < 2 || n > ws.MaxHeaderSize || n > len(b) {
			t.Fatalf("header size %d out of range for %d bytes", n, len(b))
		}
		want, werr := ws.ReadHeader(bytes.NewReader(b))
		if werr != nil {
			t.Fatalf("gobwas rejects what parseHeader accepts: %v", werr)
		}
		if h != want {
			t.Fatalf("parseHeader = %+v, gobwas = %+v", h, want)
		}
	})
}

func BenchmarkParseHeader(b *testing.B) {
	wire := []byte{0x81, 0xfe, 0x01, 0x00, 1, 2, 3, 4}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseHeader(wire); err != nil {
			b.Fatal(err)
		}
	}
}
