package framing

import (
	"bytes"
	"strings"
	"testing"
)

const benchBuf = 64 << 10

// decodeAll decodes buf to its end with d, as the bridge does with one
// full buffer, reusing dst.
func decodeAll(b *testing.B, d Decoder, dst []Piece, buf []byte, full bool) {
	for len(buf) > 0 {
		ps, n, err := d.Decode(dst[:0], buf, full, false)
		if err != nil || n == 0 && len(ps) == 0 {
			b.Fatalf("stuck: %d pieces, %d bytes, %v", len(ps), n, err)
		}
		buf = buf[n:]
	}
}

// lines64 is a 64 KiB buffer of 64-byte lines of text.
func lines64() []byte {
	line := strings.Repeat("0123456789abcdef", 4)[:63] + "\n"
	return []byte(strings.Repeat(line, benchBuf/64))
}

// mixed returns n bytes of text mixing ASCII with 2-, 3- and 4-byte code
// points, cut at a code point boundary.
func mixed(n int) []byte {
	s := []byte(strings.Repeat("Grüße, κόσμε! 日本語のテキスト 😀 plain ascii words. ", n/40+1))
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func BenchmarkLineDecode(b *testing.B) {
	b.Run("64B-lines", func(b *testing.B) {
		buf := lines64()
		d, dst := new(LineDecoder), make([]Piece, 0, 1024)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			decodeAll(b, d, dst, buf, false)
		}
	})
	// One long text line streamed through full buffers: the validating,
	// replacing path.
	b.Run("long-line-mixed", func(b *testing.B) {
		buf := mixed(benchBuf)
		d, dst := new(LineDecoder), make([]Piece, 0, 16)
		decodeAll(b, d, dst, buf, true) // open the message
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			decodeAll(b, d, dst, buf, true)
		}
	})
}

// records returns a 64 KiB-ish buffer of records with size-byte payloads.
func records(size int, k Kind) []byte {
	payload := bytes.Repeat([]byte("x"), size)
	var buf []byte
	for len(buf)+4+size <= benchBuf {
		buf = Len32Encoder{}.AppendPrefix(buf, Piece{Data: payload, Kind: k, First: true, Final: true})
		buf = append(buf, payload...)
	}
	return buf
}

func BenchmarkLen32Decode(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
		kind Kind
	}{
		{"64B-text", 60, Text},
		{"64B-binary", 60, Binary},
		{"4KiB-text", 4092, Text},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := records(bc.size, bc.kind)
			d, dst := new(Len32Decoder), make([]Piece, 0, 1024)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				decodeAll(b, d, dst, buf, false)
			}
		})
	}
}

func BenchmarkLen32Encode(b *testing.B) {
	var scratch [MaxPrefix]byte
	p := Piece{Data: make([]byte, 4096), Kind: Text, First: true}
	var e Encoder = Len32Encoder{}
	b.ReportAllocs()
	for b.Loop() {
		pre := e.AppendPrefix(scratch[:0], p)
		if len(pre) != 4 || e.Suffix(p) != nil {
			b.Fatal(pre)
		}
	}
}

func BenchmarkUTF8(b *testing.B) {
	for _, bc := range []struct {
		name string
		text []byte
	}{
		{"ascii", bytes.Repeat([]byte("plain ascii text. "), benchBuf/18)},
		{"mixed", mixed(benchBuf)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.text)))
			b.ReportAllocs()
			for b.Loop() {
				var v UTF8
				// In 4 KiB pieces cut anywhere, as frames arrive.
				for p := bc.text; len(p) > 0; {
					n := min(len(p), 4093)
					if !v.Write(p[:n]) {
						b.Fatal("invalid")
					}
					p = p[n:]
				}
				if !v.Done() {
					b.Fatal("not done")
				}
			}
		})
	}
}

// muxRecords returns a 64 KiB-ish buffer of mux records with size-byte
// payloads for connections 1 to 64 in turn.
func muxRecords(size int, k Kind) []byte {
	payload := bytes.Repeat([]byte("x"), size)
	var buf []byte
	for conn := uint32(1); len(buf)+MuxHeaderLen+size <= benchBuf; conn = conn%64 + 1 {
		buf = AppendMuxHeader(buf, k, conn, size)
		buf = append(buf, payload...)
	}
	return buf
}

func BenchmarkMuxDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
		kind Kind
	}{
		{"64B-text", 52, Text},
		{"64B-binary", 52, Binary},
		{"4KiB-text", 4084, Text},
		{"close", 5, Close},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := muxRecords(bc.size, bc.kind)
			if bc.kind == Close {
				buf = bytes.ReplaceAll(buf, []byte("xxxxx"), AppendMuxClose(nil, 1000, "bye"))
			}
			d, dst := new(MuxDecoder), make([]Piece, 0, 1024)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				decodeAll(b, d, dst, buf, false)
			}
		})
	}
	// One 64 KiB text record streamed through 4 KiB full buffers.
	b.Run("64KiB-text-streamed", func(b *testing.B) {
		text := mixed(benchBuf)
		rec := append(AppendMuxHeader(nil, Text, 1, len(text)), text...)
		d, dst := new(MuxDecoder), make([]Piece, 0, 16)
		b.SetBytes(int64(len(rec)))
		b.ReportAllocs()
		for b.Loop() {
			for p := rec; len(p) > 0; {
				ps, n, err := d.Decode(dst[:0], p[:min(len(p), 4096)], true, false)
				if err != nil || n == 0 && len(ps) == 0 {
					b.Fatalf("stuck: %d pieces, %d bytes, %v", len(ps), n, err)
				}
				p = p[n:]
			}
		}
	})
}

func BenchmarkMuxEncode(b *testing.B) {
	var scratch [MaxPrefix]byte
	p := Piece{Data: make([]byte, 4096), Kind: Text, First: true, Final: true, Conn: 7}
	var e Encoder = MuxEncoder{}
	b.ReportAllocs()
	for b.Loop() {
		pre := e.AppendPrefix(scratch[:0], p)
		if len(pre) != MuxHeaderLen || e.Suffix(p) != nil {
			b.Fatal(pre)
		}
	}
}
