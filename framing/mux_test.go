package framing

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// mrec is a mux record written by hand, not by the package: kind byte,
// zero reserved bytes, connection id, payload length, payload.
func mrec(kind byte, conn uint32, payload string) string {
	b := []byte{kind, 0, 0, 0}
	b = binary.BigEndian.AppendUint32(b, conn)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return string(b) + payload
}

// cls is a close payload: code, then reason.
func cls(code uint16, reason string) string {
	return string([]byte{byte(code >> 8), byte(code)}) + reason
}

func mtxt(conn uint32, s string) msg { return msg{Kind: Text, Data: s, Conn: conn} }
func mbin(conn uint32, s string) msg { return msg{Kind: Binary, Data: s, Conn: conn} }
func mcls(conn uint32, p string) msg { return msg{Kind: Close, Data: p, Conn: conn} }

// TestMuxDecoder checks whole records and errors over every buffer size:
// records decode to the same messages however they are cut, one byte at a
// time included, and faults are found at the same place.
func TestMuxDecoder(t *testing.T) {
	reason123 := strings.Repeat("é", 61) + "!" // 123 bytes: the longest reason
	hx := func(s string) string { return string(unhex(t, s)) }
	tests := []struct {
		name string
		in   string
		want []msg // messages completed, including one ended by ErrTruncated
		err  error
	}{
		{name: "empty stream", in: ""},
		{name: "text", in: mrec(2, 1, "hi"), want: []msg{mtxt(1, "hi")}},
		{name: "binary", in: mrec(3, 7, "\x00\x01\xff\n"), want: []msg{mbin(7, "\x00\x01\xff\n")}},
		{name: "empty text and binary", in: mrec(2, 1, "") + mrec(3, 2, ""), want: []msg{mtxt(1, ""), mbin(2, "")}},
		{name: "text with every width", in: mrec(2, 5, "aé€😀\U0010FFFF"), want: []msg{mtxt(5, "aé€😀\U0010FFFF")}},
		{name: "broadcast", in: mrec(2, 0, "to all") + mrec(3, 0, "\x01"), want: []msg{mtxt(0, "to all"), mbin(0, "\x01")}},
		{name: "largest id", in: mrec(2, 0xFFFFFFFF, "x"), want: []msg{mtxt(0xFFFFFFFF, "x")}},
		{name: "interleaved ids",
			in:   mrec(2, 1, "a1") + mrec(2, 2, "b1") + mrec(3, 1, "a2") + mrec(4, 2, cls(1000, "")) + mrec(2, 0, "all") + mrec(2, 1, "a3"),
			want: []msg{mtxt(1, "a1"), mtxt(2, "b1"), mbin(1, "a2"), mcls(2, cls(1000, "")), mtxt(0, "all"), mtxt(1, "a3")}},
		{name: "close with reason", in: mrec(4, 3, cls(1000, "bye")), want: []msg{mcls(3, cls(1000, "bye"))}},
		{name: "close without code", in: mrec(4, 3, ""), want: []msg{mcls(3, "")}},
		{name: "close everyone", in: mrec(4, 0, cls(1001, "going away")), want: []msg{mcls(0, cls(1001, "going away"))}},
		{name: "close with the longest reason", in: mrec(4, 9, cls(4999, reason123)) + mrec(2, 9, "after"),
			want: []msg{mcls(9, cls(4999, reason123)), mtxt(9, "after")}},
		{name: "close codes at the edges of the valid ranges",
			in:   mrec(4, 1, cls(1003, "")) + mrec(4, 2, cls(1007, "")) + mrec(4, 3, cls(1014, "")) + mrec(4, 4, cls(3000, "")),
			want: []msg{mcls(1, cls(1003, "")), mcls(2, cls(1007, "")), mcls(3, cls(1014, "")), mcls(4, cls(3000, ""))}},

		{name: "open from the child", in: mrec(2, 1, "ok") + mrec(1, 1, "A=b\x00"), want: []msg{mtxt(1, "ok")}, err: ErrMuxRecord},
		{name: "kind 0", in: mrec(0, 1, ""), err: ErrMuxRecord},
		{name: "kind 5", in: mrec(5, 1, "x"), err: ErrMuxRecord},
		{name: "kind ff", in: mrec(0xff, 1, "x"), err: ErrMuxRecord},
		{name: "reserved byte 1", in: hx("02 01 00 00 00 00 00 01 00 00 00 00"), err: ErrMuxRecord},
		{name: "reserved byte 2", in: hx("03 00 80 00 00 00 00 01 00 00 00 00"), err: ErrMuxRecord},
		{name: "reserved byte 3", in: hx("04 00 00 01 00 00 00 01 00 00 00 00"), err: ErrMuxRecord},
		{name: "length over MaxRecord", in: hx("03 00 00 00 00 00 00 01 40 00 00 00 01 02"), err: ErrMuxRecord},
		{name: "largest length, truncated", in: hx("03 00 00 00 00 00 00 01 3f ff ff ff 01 02"), want: []msg{mbin(1, "\x01\x02")}, err: ErrTruncated},
		{name: "close payload of 1 byte", in: mrec(4, 1, "\x03"), err: ErrMuxRecord},
		{name: "close payload over 125 bytes", in: mrec(4, 1, cls(1000, reason123+"x")), err: ErrMuxRecord},
		{name: "close payload over 125 bytes, seen in the header", in: hx("04 00 00 00 00 00 00 01 00 00 00 7e 03 e8"), err: ErrMuxRecord},
		{name: "close code 0", in: mrec(4, 1, cls(0, "")), err: ErrMuxRecord},
		{name: "close code 999", in: mrec(4, 1, cls(999, "")), err: ErrMuxRecord},
		{name: "close code 1004", in: mrec(4, 1, cls(1004, "")), err: ErrMuxRecord},
		{name: "close code 1005", in: mrec(4, 1, cls(1005, "")), err: ErrMuxRecord},
		{name: "close code 1006", in: mrec(4, 1, cls(1006, "")), err: ErrMuxRecord},
		{name: "close code 1015", in: mrec(4, 1, cls(1015, "")), err: ErrMuxRecord},
		{name: "close code 2999", in: mrec(4, 1, cls(2999, "")), err: ErrMuxRecord},
		{name: "close code 5000", in: mrec(4, 1, cls(5000, "")), err: ErrMuxRecord},
		{name: "close reason not UTF-8", in: mrec(2, 1, "a") + mrec(4, 1, cls(1000, "b\xff")), want: []msg{mtxt(1, "a")}, err: ErrInvalidUTF8},
		{name: "text not UTF-8", in: mrec(2, 1, "a") + mrec(2, 2, "ab\xffcd"), want: []msg{mtxt(1, "a")}, err: ErrInvalidUTF8},
		{name: "text surrogate", in: mrec(2, 1, "\xed\xa0\x80"), err: ErrInvalidUTF8},
		{name: "text ends mid code point", in: mrec(2, 1, "a\xe2\x82"), err: ErrInvalidUTF8},
		{name: "binary may be anything", in: mrec(3, 1, "\xed\xa0\x80\xff"), want: []msg{mbin(1, "\xed\xa0\x80\xff")}},

		{name: "truncated header", in: mrec(2, 1, "a") + "\x02\x00\x00", want: []msg{mtxt(1, "a")}, err: ErrTruncated},
		{name: "truncated text", in: mrec(2, 4, "a") + mrec(2, 5, "hello")[:15], want: []msg{mtxt(4, "a"), mtxt(5, "hel")}, err: ErrTruncated},
		{name: "truncated binary", in: mrec(3, 4, "\x01\x02\x03")[:13], want: []msg{mbin(4, "\x01")}, err: ErrTruncated},
		{name: "truncated right after a header", in: mrec(3, 4, "\x01\x02\x03")[:12], want: []msg{mbin(4, "")}, err: ErrTruncated},
		{name: "truncated close", in: mrec(4, 4, cls(1000, "bye"))[:14], err: ErrTruncated},
		{name: "truncated text, invalid before the cut", in: mrec(2, 4, "a\xffbcd")[:15], err: ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := []byte(tt.in)
			for _, s := range append(setups(stream), whole(stream)) {
				got, err := pump(t, NewMuxDecoder(), stream, s)
				if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
					t.Fatalf("%v: error %v, want %v", s, err, tt.err)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("%v: got %v, want %v", s, got, tt.want)
				}
			}
		})
	}
}

func TestMuxDecoderSteps(t *testing.T) {
	close1000 := mrec(4, 2, cls(1000, "bye"))
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "whole records", steps: []step{
			{buf: mrec(2, 1, "hi") + mrec(3, 0, "") + close1000 + "\x02",
				want: `text first final #1 "hi" | binary first final "" | close first final #2 "\x03\xe8bye"`, n: 14 + 12 + 17},
		}},
		{name: "a record not all in buf waits", steps: []step{
			{buf: mrec(2, 1, "hello")[:15], want: "", n: 0},
			{buf: mrec(2, 1, "hello"), want: `text first final #1 "hello"`, n: 17},
		}},
		{name: "a full buffer streams the record", steps: []step{
			{buf: mrec(2, 9, "hello")[:14], full: true, want: `text first #9 "he"`, n: 14},
			{buf: "l", want: "", n: 0},
			{buf: "l", full: true, want: `text #9 "l"`, n: 1},
			{buf: "lo\x02\x00", want: `text final #9 "lo"`, n: 2},
		}},
		{name: "a full buffer after a whole record waits", steps: []step{
			{buf: mrec(2, 1, "a") + mrec(2, 1, "bcd")[:13], full: true, want: `text first final #1 "a"`, n: 13},
		}},
		{name: "a header alone in a full buffer opens the record", steps: []step{
			{buf: mrec(3, 3, "\x01\x02")[:12], full: true, want: `binary first #3 ""`, n: 12},
			{buf: "\x01\x02", want: `binary final #3 "\x01\x02"`, n: 2},
		}},
		{name: "a header cut by a tiny full buffer", steps: []step{
			{buf: "\x02\x00\x00\x00\x00", full: true, want: "", n: 5},
			{buf: "\x00\x00\x06\x00\x00", full: true, want: "", n: 5},
			{buf: "\x00\x01a\x02", full: true, want: `text first final #6 "a"`, n: 3},
		}},
		{name: "a close record cut by a tiny full buffer comes whole", steps: []step{
			{buf: close1000[:4], full: true, want: "", n: 4},
			{buf: close1000[4:12], full: true, want: "", n: 8},
			{buf: close1000[12:16], full: true, want: "", n: 4},
			{buf: close1000[16:] + "\x02", full: true, want: `close first final #2 "\x03\xe8bye"`, n: 1},
		}},
		{name: "a close record not all in a buffer that is not full waits", steps: []step{
			{buf: close1000[:16], want: "", n: 0},
		}},
		{name: "dst full stops early", steps: []step{
			{buf: mrec(2, 1, "a") + mrec(2, 2, "b"), cap: 1, want: `text first final #1 "a"`, n: 13},
		}},
		{name: "nothing when dst is full", steps: []step{
			{buf: mrec(2, 1, "a"), cap: -1, want: "", n: 0},
		}},
		{name: "nothing at eof with an empty buf", steps: []step{
			{buf: "", eof: true, want: "", n: 0},
		}},
		{name: "truncation ends the open record", steps: []step{
			{buf: mrec(2, 1, "abcd")[:14], full: true, want: `text first #1 "ab"`, n: 14},
			{buf: "c", eof: true, want: `text final #1 "c"`, n: 1, err: ErrTruncated},
		}},
		{name: "truncation inside a gathered close record", steps: []step{
			{buf: close1000[:13], full: true, want: "", n: 13},
			{buf: "\xe8b", eof: true, want: "", n: 2, err: ErrTruncated},
		}},
		{name: "an error comes after the good records", steps: []step{
			{buf: mrec(2, 1, "a") + mrec(1, 1, ""), want: `text first final #1 "a"`, n: 13, err: ErrMuxRecord},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, NewMuxDecoder(), tt.steps)
		})
	}
}

func TestMuxDecoderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		eof  bool
		err  error
		text string // the error's message
		n    int
	}{
		{name: "open", in: mrec(1, 1, ""), err: ErrMuxRecord, n: 0,
			text: "framing: malformed mux record: an open record (kind 1) from the child: only the bridge sends those"},
		{name: "unknown kind", in: mrec(9, 1, ""), err: ErrMuxRecord, n: 0,
			text: "framing: malformed mux record: unknown kind 9"},
		{name: "reserved bits", in: "\x02\x00\x10\x00" + mrec(2, 1, "")[4:], err: ErrMuxRecord, n: 0,
			text: "framing: malformed mux record: reserved bytes 1-3 are 00 10 00, not zero"},
		{name: "over MaxRecord", in: "\x03\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff", err: ErrMuxRecord, n: 0,
			text: "framing: malformed mux record: a payload of 4294967295 bytes, over MaxRecord"},
		{name: "close of 1 byte", in: mrec(2, 1, "a") + mrec(4, 1, "\x03"), err: ErrMuxRecord, n: 13,
			text: "framing: malformed mux record: a close payload of 1 byte: a code takes 2"},
		{name: "close of 126 bytes", in: "\x04\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x7e", err: ErrMuxRecord, n: 0,
			text: "framing: malformed mux record: a close payload of 126 bytes, over 125"},
		{name: "close code 1006", in: mrec(4, 5, cls(1006, "")), err: ErrMuxRecord, n: 0,
			text: "framing: malformed mux record: close code 1006 for connection 5 is not valid on the wire"},
		{name: "close reason", in: mrec(4, 5, cls(1000, "\xc3(")), err: ErrInvalidUTF8, n: 0,
			text: `framing: text message is not valid UTF-8: a close reason "\xc3("`},
		{name: "invalid text", in: mrec(2, 3, "\xc3("), err: ErrInvalidUTF8, n: 12,
			text: "framing: text message is not valid UTF-8: a text record for connection 3 holds a byte sequence that is not UTF-8"},
		{name: "text ends mid code point", in: mrec(2, 3, "\xc3"), err: ErrInvalidUTF8, n: 12,
			text: "framing: text message is not valid UTF-8: a text record for connection 3 ends inside a code point"},
		{name: "eof in payload", in: mrec(3, 1, "abcd")[:13], eof: true, err: ErrTruncated, n: 13,
			text: "framing: stream ended inside a message: 3 bytes short of a record's end"},
		{name: "eof in header", in: "\x02\x00", eof: true, err: ErrTruncated, n: 2,
			text: "framing: stream ended inside a message: in a record header, after 2 of its 12 bytes"},
		{name: "eof in a close record", in: mrec(4, 1, cls(1000, "bye"))[:15], eof: true, err: ErrTruncated, n: 15,
			text: "framing: stream ended inside a message: 2 bytes short of a close record's end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewMuxDecoder()
			_, n, err := d.Decode(make([]Piece, 0, 8), []byte(tt.in), false, tt.eof)
			if !errors.Is(err, tt.err) || err.Error() != tt.text || n != tt.n {
				t.Fatalf("got %d, %v; want %d, %s", n, err, tt.n, tt.text)
			}
			if _, _, again := d.Decode(make([]Piece, 0, 8), []byte(mrec(2, 1, "ok")), false, true); again != err {
				t.Fatalf("second call: %v, want the same error", again)
			}
		})
	}
}

func TestMuxEncoder(t *testing.T) {
	tests := []struct {
		name string
		p    Piece
		want string // hex of prefix + data + suffix
	}{
		{"open", Piece{Data: []byte("A=1\x00"), Kind: Open, First: true, Final: true, Conn: 1},
			"01 00 00 00 00 00 00 01 00 00 00 04 41 3d 31 00"},
		{"text", Piece{Data: []byte("hi"), Kind: Text, First: true, Final: true, Conn: 2},
			"02 00 00 00 00 00 00 02 00 00 00 02 68 69"},
		{"binary", Piece{Data: []byte{0xff}, Kind: Binary, First: true, Final: true, Conn: 0x01020304},
			"03 00 00 00 01 02 03 04 00 00 00 01 ff"},
		{"close", Piece{Data: []byte{0x03, 0xee}, Kind: Close, First: true, Final: true, Conn: 0xFFFFFFFF},
			"04 00 00 00 ff ff ff ff 00 00 00 02 03 ee"},
		{"empty text", Piece{Kind: Text, First: true, Final: true, Conn: 1},
			"02 00 00 00 00 00 00 01 00 00 00 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := encode(MuxEncoder{}, tt.p), string(unhex(t, tt.want)); got != want {
				t.Fatalf("got % x, want % x", got, want)
			}
		})
	}
	panics := []struct {
		name string
		f    func()
	}{
		{"first fragment", func() { MuxEncoder{}.AppendPrefix(nil, Piece{Kind: Text, First: true}) }},
		{"last fragment", func() { MuxEncoder{}.AppendPrefix(nil, Piece{Kind: Text, Final: true}) }},
		{"over MaxRecord", func() { AppendMuxHeader(nil, Binary, 1, MaxRecord+1) }},
		{"not a kind", func() { AppendMuxHeader(nil, Kind(9), 1, 0) }},
	}
	for _, tt := range panics {
		t.Run(tt.name+" panics", func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tt.f()
		})
	}
}

func TestAppendMuxEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"none", nil, ""},
		{"entries end in NUL", []string{"REMOTE_ADDR=127.0.0.1", "QUERY_STRING=nick=ann", "EMPTY="},
			"REMOTE_ADDR=127.0.0.1\x00QUERY_STRING=nick=ann\x00EMPTY=\x00"},
		{"an entry holding NUL is left out", []string{"A=1", "B=x\x00C=2", "D=3"}, "A=1\x00D=3\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendMuxEnv([]byte("pre"), tt.env); string(got) != "pre"+tt.want {
				t.Fatalf("got %q, want %q", got, "pre"+tt.want)
			}
		})
	}
}

func TestMuxClose(t *testing.T) {
	long := strings.Repeat("a", 122) + "€" // 125 bytes: the euro sign does not fit
	tests := []struct {
		name   string
		code   uint16
		reason string
		want   string // the payload
	}{
		{"no code", 0, "ignored", ""},
		{"code only", 1000, "", "\x03\xe8"},
		{"code and reason", 4001, "nick taken", "\x0f\xa1nick taken"},
		{"1006 for a client that dropped", 1006, "", "\x03\xee"},
		{"longest reason", 1000, strings.Repeat("x", 123), "\x03\xe8" + strings.Repeat("x", 123)},
		{"long reason cut at a code point", 1000, long, "\x03\xe8" + strings.Repeat("a", 122)},
		{"long reason cut at an ASCII byte", 1000, strings.Repeat("é", 61) + "abc", "\x03\xe8" + strings.Repeat("é", 61) + "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := AppendMuxClose(nil, tt.code, tt.reason)
			if string(p) != tt.want {
				t.Fatalf("AppendMuxClose = %q, want %q", p, tt.want)
			}
			code, reason, err := ParseMuxClose(p)
			wantReason := ""
			if len(tt.want) > 2 {
				wantReason = tt.want[2:]
			}
			if err != nil || code != tt.code && tt.want != "" || tt.want == "" && code != 0 || reason != wantReason {
				t.Fatalf("ParseMuxClose = %d, %q, %v; want %d, %q", code, reason, err, tt.code, wantReason)
			}
		})
	}
	bad := []struct {
		name string
		p    string
		err  error
	}{
		{"one byte", "\x03", ErrMuxRecord},
		{"over 125 bytes", "\x03\xe8" + strings.Repeat("x", 124), ErrMuxRecord},
		{"reason not UTF-8", "\x03\xe8\xff", ErrInvalidUTF8},
		{"reason cut in a code point", "\x03\xe8\xe2\x82", ErrInvalidUTF8},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if code, reason, err := ParseMuxClose([]byte(tt.p)); !errors.Is(err, tt.err) || code != 0 || reason != "" {
				t.Fatalf("got %d, %q, %v; want error %v", code, reason, err, tt.err)
			}
		})
	}
}

func TestCloseCodeOnWire(t *testing.T) {
	valid := map[uint16]bool{}
	for _, r := range [][2]int{{1000, 1003}, {1007, 1014}, {3000, 4999}} {
		for c := r[0]; c <= r[1]; c++ {
			valid[uint16(c)] = true
		}
	}
	for c := range 1 << 16 {
		if got := CloseCodeOnWire(uint16(c)); got != valid[uint16(c)] {
			t.Errorf("CloseCodeOnWire(%d) = %t", c, got)
		}
	}
}

// TestMuxRoundTrip: messages for random connections framed by MuxEncoder
// decode to themselves through every kind of buffer.
func TestMuxRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	codes := []uint16{1000, 1001, 1003, 1007, 1011, 1014, 3000, 4001, 4999}
	for i := range 40 {
		msgs := randMessages(r, 1+r.IntN(6), 40, false)
		var stream []byte
		for j := range msgs {
			m := &msgs[j]
			m.Conn = uint32(r.IntN(4))
			if r.IntN(4) == 0 {
				reason := []rune("bye 👋 é")[:r.IntN(8)]
				m.Kind, m.Data = Close, string(AppendMuxClose(nil, codes[r.IntN(len(codes))], string(reason)))
			}
			stream = append(stream, encode(MuxEncoder{}, Piece{Data: []byte(m.Data), Kind: m.Kind, First: true, Final: true, Conn: m.Conn})...)
		}
		ss := []setup{whole(stream), {buf: 1, read: 1, dst: 1}, {buf: 5, read: 3, dst: 2}, {buf: 64, read: 64, dst: 64}}
		for j := range 5 {
			ss = append(ss, setup{buf: 1 + r.IntN(len(stream)+1), read: 1 + r.IntN(20), dst: 1 + j})
		}
		for _, s := range ss {
			got, err := pump(t, NewMuxDecoder(), stream, s)
			if err != nil || !slices.Equal(got, msgs) {
				t.Fatalf("%d: %v: got %v, %v; want %v", i, s, got, err, msgs)
			}
		}
	}
}
