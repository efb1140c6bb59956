package framing

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"unicode/utf8"
)

// fuzzSetups turns fuzzer bytes into a few setups: the fuzzer's own and two
// fixed extremes. pump then checks the Decoder contract on each.
func fuzzSetups(buf, read, dst uint8) []setup {
	return []setup{
		{buf: int(buf)%64 + 1, read: int(read)%64 + 1, dst: int(dst)%8 + 1},
		{buf: 1, read: 1, dst: 1},
		{buf: 4, read: 3, dst: 2},
	}
}

func FuzzLineDecoder(f *testing.F) {
	for _, s := range []string{
		"", "a\nb\r\n\n", "abc", "a\rb\r", "\r\n\r\r\n",
		"héllo\n😀€\r\n", "\xff\xfe\n", "ok\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64\n",
		"abc\xed\xa0\x80\xe0\x80\xaf\xf4\x90\x80\x80\xc0\xaf\n", "abcd\xe2\x82\r\n\xf0\x9f\x98",
	} {
		f.Add([]byte(s), uint8(3), uint8(2), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, buf, read, dst uint8) {
		lineAgrees(t, data, fuzzSetups(buf, read, dst))
	})
}

func FuzzLen32Decoder(f *testing.F) {
	for _, s := range []string{
		"", "80 00 00 02 68 69", "C0 00 00 03 68 65 6C 80 00 00 02 6C 6F",
		"40 00 00 00 40 00 00 01 ff 00 00 00 01 fe", "C0 00 00 01 e2 C0 00 00 01 82 80 00 00 01 ac",
		"80 00 00 01 61 C0 00 00 01 62 00 00 00 01 63", "80 00 00 05 68 69", "C0 00 00 02 68 69",
		"80 00 00 03 ed a0 80", "80 00 00 01 e2", "00 00 00 05 01 02", "80 00",
	} {
		f.Add(unhex(f, s), uint8(5), uint8(3), uint8(1))
	}
	sentinels := []error{ErrTruncated, ErrInvalidUTF8, ErrKindChange}
	class := func(err error) error {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return s
			}
		}
		return err
	}
	f.Fuzz(func(t *testing.T, data []byte, buf, read, dst uint8) {
		want, werr := pump(t, NewLen32Decoder(), data, whole(data))
		for i, m := range want {
			truncated := i == len(want)-1 && errors.Is(werr, ErrTruncated)
			if m.Kind == Text && !truncated && !utf8.ValidString(m.Data) {
				t.Fatalf("text message %v is not UTF-8", m)
			}
		}
		if werr != nil && class(werr) == werr {
			t.Fatalf("error %v is none of the package's", werr)
		}
		for _, s := range fuzzSetups(buf, read, dst) {
			got, err := pump(t, NewLen32Decoder(), data, s)
			if !slices.Equal(got, want) || class(err) != class(werr) {
				t.Fatalf("%v: got %v, %v; whole: %v, %v", s, got, err, want, werr)
			}
		}
		if werr != nil {
			return
		}
		// Round trip: what decodes, encodes back into records that decode
		// to the same messages.
		var again []byte
		for _, m := range want {
			again = append(again, encode(Len32Encoder{}, Piece{Data: []byte(m.Data), Kind: m.Kind, First: true, Final: true})...)
		}
		if got, err := pump(t, NewLen32Decoder(), again, whole(again)); err != nil || !slices.Equal(got, want) {
			t.Fatalf("re-encoded: got %v, %v; want %v", got, err, want)
		}
	})
}

func FuzzMuxDecoder(f *testing.F) {
	for _, s := range []string{
		"", mrec(2, 1, "hi"), mrec(3, 0, "\x00\xff") + mrec(4, 2, cls(1000, "bye")),
		mrec(2, 1, "a") + mrec(2, 2, "b") + mrec(2, 0, "all") + mrec(4, 0, ""),
		mrec(1, 1, "A=b\x00"), mrec(4, 1, "\x03"), mrec(4, 1, cls(1006, "")), mrec(4, 1, cls(1000, "\xff")),
		mrec(2, 1, "a\xe2\x82"), mrec(2, 1, "hello")[:15], mrec(4, 1, cls(1000, "bye"))[:14], "\x02\x00\x00",
		"\x02\x00\x01\x00" + mrec(2, 1, "")[4:], "\x03\x00\x00\x00\x00\x00\x00\x01\x40\x00\x00\x00",
	} {
		f.Add([]byte(s), uint8(13), uint8(5), uint8(1))
	}
	sentinels := []error{ErrTruncated, ErrInvalidUTF8, ErrMuxRecord}
	class := func(err error) error {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return s
			}
		}
		return err
	}
	f.Fuzz(func(t *testing.T, data []byte, buf, read, dst uint8) {
		// The model gives each record's payload and the fault: the pieces
		// add up to exactly the payload bytes, whatever the buffers.
		want, werr := muxModel(data)
		for _, s := range append(fuzzSetups(buf, read, dst), whole(data)) {
			got, err := pump(t, NewMuxDecoder(), data, s)
			if !slices.Equal(got, want) || class(err) != werr {
				t.Fatalf("%v: got %v, %v; model: %v, %v", s, got, err, want, werr)
			}
		}
		if werr != nil {
			return
		}
		// Round trip: what decodes, encodes back into the same bytes.
		var again []byte
		for _, m := range want {
			again = append(again, encode(MuxEncoder{}, Piece{Data: []byte(m.Data), Kind: m.Kind, First: true, Final: true, Conn: m.Conn})...)
		}
		if string(again) != string(data) {
			t.Fatalf("re-encoded: % x, want % x", again, data)
		}
	})
}

// muxModel decodes a mux stream the simple way, one whole record at a
// time, as the package documentation describes the framing and sharing no
// code with MuxDecoder. It returns the messages, one cut short by the end
// of the stream included, and the sentinel of the fault, if any.
func muxModel(s []byte) ([]msg, error) {
	var out []msg
	for len(s) > 0 {
		if len(s) < 12 {
			return out, ErrTruncated
		}
		kind := map[byte]Kind{2: Text, 3: Binary, 4: Close}
		k, ok := kind[s[0]]
		conn, size := binary.BigEndian.Uint32(s[4:]), binary.BigEndian.Uint32(s[8:])
		if !ok || s[1] != 0 || s[2] != 0 || s[3] != 0 || size >= 1<<30 || k == Close && (size == 1 || size > 125) {
			return out, ErrMuxRecord
		}
		p := s[12:]
		if uint32(len(p)) < size {
			switch {
			case k == Close:
				return out, ErrTruncated
			case k == Text && !extendable(p):
				return out, ErrInvalidUTF8
			}
			return append(out, msg{k, string(p), conn}), ErrTruncated
		}
		p = p[:size]
		if k == Close && size >= 2 {
			code := int(p[0])<<8 | int(p[1])
			if !(1000 <= code && code <= 1003 || 1007 <= code && code <= 1014 || 3000 <= code && code <= 4999) {
				return out, ErrMuxRecord
			}
			if !utf8.Valid(p[2:]) {
				return out, ErrInvalidUTF8
			}
		}
		if k == Text && !utf8.Valid(p) {
			return out, ErrInvalidUTF8
		}
		out = append(out, msg{k, string(p), conn})
		s = s[12+size:]
	}
	return out, nil
}

func FuzzRawDecoder(f *testing.F) {
	f.Add([]byte("raw\x00bytes\n"), uint8(3), uint8(2), uint8(1))
	f.Add([]byte{}, uint8(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, buf, read, dst uint8) {
		for _, s := range append(fuzzSetups(buf, read, dst), whole(data)) {
			got, err := pump(t, NewRawDecoder(), data, s)
			if err != nil {
				t.Fatal(err)
			}
			checkRaw(t, s, data, got)
		}
	})
}

func FuzzUTF8(f *testing.F) {
	for _, s := range []string{
		"", "hello", "κόσμε", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "a\xe2\x82",
		"\xf0\x9f\x98\x80", "\xef\xbf\xbd", "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
	} {
		f.Add([]byte(s), uint16(1), uint16(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, i, j uint16) {
		valid := utf8.Valid(data)
		// Whole, and cut in three: Write agrees with utf8.Valid at the end.
		a := int(i) % (len(data) + 1)
		b := a + int(j)%(len(data)-a+1)
		var v UTF8
		ok := v.Write(data[:a])
		ok = v.Write(data[a:b]) && ok
		ok = v.Write(data[b:]) && ok
		if v.Done() != valid || !ok && valid {
			t.Fatalf("cut at %d, %d: Write ok=%t, Done=%t; utf8.Valid=%t", a, b, ok, v.Done(), valid)
		}
		v.Reset()
		if v.Write(data) != extendable(data) || v.Done() != valid {
			t.Fatalf("whole: Write=%t Done=%t; want %t, %t", !extendable(data), v.Done(), extendable(data), valid)
		}
		// Byte by byte: Write fails exactly at the first byte after which
		// the stream cannot become valid.
		v.Reset()
		for k := range data {
			if !v.Write(data[k : k+1]) {
				if !extendable(data[:k]) || extendable(data[:k+1]) {
					t.Fatalf("failed at byte %d of %q", k, data)
				}
				return
			}
		}
		if !extendable(data) {
			t.Fatalf("never failed on %q", data)
		}
	})
}

// extendable reports whether some valid UTF-8 text starts with p: p ends
// in a valid code point, or with a sequence that 1 to 3 more bytes can
// complete. It uses only utf8.Valid, trying for each missing byte one
// value from each range a continuation byte can be restricted to.
func extendable(p []byte) bool {
	for k := len(p); k >= 0 && k >= len(p)-3; k-- {
		if utf8.Valid(p[:k]) && completes(p[k:], 3) {
			return true
		}
	}
	return false
}

func completes(s []byte, more int) bool {
	if utf8.Valid(s) {
		return true
	}
	if more == 0 {
		return false
	}
	for _, c := range []byte{0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF} {
		if completes(append(s[:len(s):len(s)], c), more-1) {
			return true
		}
	}
	return false
}
