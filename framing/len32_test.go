package framing

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// unhex decodes hex with spaces, as the package documentation writes it.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLen32Decoder checks whole messages and errors over every buffer
// size: records decode to the same messages however they are cut, and
// faults are found at the same place.
func TestLen32Decoder(t *testing.T) {
	tests := []struct {
		name string
		in   string // hex
		want []msg  // messages completed, including one closed by ErrTruncated
		err  error
	}{
		{name: "empty stream", in: ""},
		{name: "text hi", in: "80 00 00 02 68 69", want: []msg{txt("hi")}},
		{name: "binary", in: "00 00 00 03 01 02 03", want: []msg{bin("\x01\x02\x03")}},
		{name: "empty text", in: "80 00 00 00", want: []msg{txt("")}},
		{name: "empty binary", in: "00 00 00 00", want: []msg{bin("")}},
		{name: "several messages", in: "80 00 00 01 61  00 00 00 00  00 00 00 01 0a  80 00 00 02 0d 0a",
			want: []msg{txt("a"), bin(""), bin("\n"), txt("\r\n")}},
		{name: "fragmented text", in: "C0 00 00 03 68 65 6C 80 00 00 02 6C 6F", want: []msg{txt("hello")}},
		{name: "fragmented binary with empty records", in: "40 00 00 00 40 00 00 01 ff 40 00 00 00 00 00 00 01 fe",
			want: []msg{bin("\xff\xfe")}},
		{name: "code point split across records", in: "C0 00 00 01 e2 C0 00 00 01 82 80 00 00 01 ac", want: []msg{txt("€")}},
		{name: "binary may be anything", in: "00 00 00 04 ed a0 80 ff", want: []msg{bin("\xed\xa0\x80\xff")}},
		{name: "text noncharacters and max", in: "80 00 00 0a ef bf bd ef bf bf f4 8f bf bf", want: []msg{txt("\uFFFD\uFFFF\U0010FFFF")}},

		{name: "kind change text to binary", in: "80 00 00 01 61 C0 00 00 01 62 00 00 00 01 63",
			want: []msg{txt("a")}, err: ErrKindChange},
		{name: "kind change binary to text", in: "40 00 00 01 62 80 00 00 01 63", err: ErrKindChange},

		{name: "truncated header", in: "80 00 00 01 61 80 00", want: []msg{txt("a")}, err: ErrTruncated},
		{name: "truncated header in a message", in: "C0 00 00 01 61 80", want: []msg{txt("a")}, err: ErrTruncated},
		{name: "truncated payload", in: "00 00 00 05 01 02", want: []msg{bin("\x01\x02")}, err: ErrTruncated},
		{name: "truncated text payload", in: "80 00 00 05 68 69", want: []msg{txt("hi")}, err: ErrTruncated},
		{name: "continuation bit on the last record", in: "C0 00 00 02 68 69", want: []msg{txt("hi")}, err: ErrTruncated},
		{name: "empty continuation record last", in: "40 00 00 00", want: []msg{bin("")}, err: ErrTruncated},

		{name: "invalid byte", in: "80 00 00 01 61 80 00 00 03 61 ff 62", want: []msg{txt("a")}, err: ErrInvalidUTF8},
		{name: "surrogate", in: "80 00 00 03 ed a0 80", err: ErrInvalidUTF8},
		{name: "overlong", in: "80 00 00 02 c0 af", err: ErrInvalidUTF8},
		{name: "over U+10FFFF", in: "80 00 00 04 f4 90 80 80", err: ErrInvalidUTF8},
		{name: "text ends mid code point", in: "80 00 00 02 e2 82", err: ErrInvalidUTF8},
		{name: "text ends mid code point across records", in: "C0 00 00 01 e2 80 00 00 01 82", err: ErrInvalidUTF8},
		{name: "invalid before truncation", in: "80 00 00 09 61 ff 62", err: ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := unhex(t, tt.in)
			for _, s := range append(setups(stream), whole(stream)) {
				got, err := pump(t, NewLen32Decoder(), stream, s)
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

func TestLen32DecoderSteps(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "whole records", steps: []step{
			{buf: "\x80\x00\x00\x02hi\x00\x00\x00\x00\x80", want: `text first final "hi" | binary first final ""`, n: 10},
		}},
		{name: "a record not all in buf waits", steps: []step{
			{buf: "\x80\x00\x00\x05hel", want: "", n: 0},
			{buf: "\x80\x00\x00\x05hello", want: `text first final "hello"`, n: 9},
		}},
		{name: "a full buffer streams the record", steps: []step{
			{buf: "\x80\x00\x00\x05he", full: true, want: `text first "he"`, n: 6},
			{buf: "l", want: "", n: 0},
			{buf: "l", full: true, want: `text "l"`, n: 1},
			{buf: "lo\xc0\x00\x00\x01", want: `text final "lo"`, n: 2},
		}},
		{name: "the record's continuation bit decides Final", steps: []step{
			{buf: "\xc0\x00\x00\x04ab", full: true, want: `text first "ab"`, n: 6},
			{buf: "cd\x80\x00\x00\x01e", want: `text "cd" | text final "e"`, n: 7},
		}},
		{name: "a header alone in a full buffer opens the message", steps: []step{
			{buf: "\x00\x00\x00\x02", full: true, want: `binary first ""`, n: 4},
			{buf: "\x01\x02", want: `binary final "\x01\x02"`, n: 2},
		}},
		{name: "a header cut by a tiny full buffer", steps: []step{
			{buf: "\x80\x00", full: true, want: "", n: 2},
			{buf: "\x00\x01", full: true, want: "", n: 2},
			{buf: "a\x80", full: true, want: `text first final "a"`, n: 1},
		}},
		{name: "dst full stops early", steps: []step{
			{buf: "\x80\x00\x00\x01a\x80\x00\x00\x01b", cap: 1, want: `text first final "a"`, n: 5},
		}},
		{name: "truncation ends the open message", steps: []step{
			{buf: "\xc0\x00\x00\x01a\x80\x00\x00\x04bc", eof: true, want: `text first "a" | text final "bc"`, n: 11, err: ErrTruncated},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, NewLen32Decoder(), tt.steps)
		})
	}
}

func TestLen32DecoderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string // hex
		eof  bool
		err  error
		text string // the error's message
		n    int
	}{
		{name: "kind change", in: "C0 00 00 01 61 00 00 00 01 62", err: ErrKindChange, n: 5,
			text: "framing: message changes kind between records: a binary record continues a text message"},
		{name: "invalid text", in: "80 00 00 02 c3 28", err: ErrInvalidUTF8, n: 4,
			text: "framing: text message is not valid UTF-8: a text message holds a byte sequence that is not UTF-8"},
		{name: "text ends mid code point", in: "80 00 00 01 c3", err: ErrInvalidUTF8, n: 4,
			text: "framing: text message is not valid UTF-8: a text message ends inside a code point"},
		{name: "eof in payload", in: "00 00 00 04 01", eof: true, err: ErrTruncated, n: 5,
			text: "framing: stream ended inside a message: 3 bytes short of a record's end"},
		{name: "eof in header", in: "00 00", eof: true, err: ErrTruncated, n: 2,
			text: "framing: stream ended inside a message: in a record header, after 2 of its 4 bytes"},
		{name: "eof after continuation bit", in: "40 00 00 01 01", eof: true, err: ErrTruncated, n: 5,
			text: "framing: stream ended inside a message: after a record with the continuation bit set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewLen32Decoder()
			_, n, err := d.Decode(make([]Piece, 0, 8), unhex(t, tt.in), false, tt.eof)
			if !errors.Is(err, tt.err) || err.Error() != tt.text || n != tt.n {
				t.Fatalf("got %d, %v; want %d, %s", n, err, tt.n, tt.text)
			}
			if _, _, again := d.Decode(make([]Piece, 0, 8), nil, false, true); again != err {
				t.Fatalf("second call: %v, want the same error", again)
			}
		})
	}
}

func TestLen32Encoder(t *testing.T) {
	tests := []struct {
		name string
		p    Piece
		want string // hex of prefix + data + suffix
	}{
		{"text hi", Piece{Data: []byte("hi"), Kind: Text, First: true, Final: true}, "80 00 00 02 68 69"},
		{"binary", Piece{Data: []byte{1, 2, 3}, Kind: Binary, First: true, Final: true}, "00 00 00 03 01 02 03"},
		{"empty text", Piece{Kind: Text, First: true, Final: true}, "80 00 00 00"},
		{"first text fragment", Piece{Data: []byte("hel"), Kind: Text, First: true}, "C0 00 00 03 68 65 6C"},
		{"last text fragment", Piece{Data: []byte("lo"), Kind: Text, Final: true}, "80 00 00 02 6C 6F"},
		{"middle binary fragment", Piece{Data: []byte{0xff}, Kind: Binary}, "40 00 00 01 ff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := encode(Len32Encoder{}, tt.p), string(unhex(t, tt.want)); got != want {
				t.Fatalf("got % x, want % x", got, want)
			}
		})
	}
}

func TestLen32Header(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		kind  Kind
		final bool
		want  uint32
	}{
		{"max text", MaxRecord, Text, true, 0xBFFFFFFF},
		{"max binary continued", MaxRecord, Binary, false, 0x7FFFFFFF},
		{"all bits", MaxRecord, Text, false, 0xFFFFFFFF},
		{"zero", 0, Binary, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len32Header(tt.n, tt.kind, tt.final); got != tt.want {
				t.Fatalf("got %#x, want %#x", got, tt.want)
			}
		})
	}
	t.Run("over MaxRecord panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		len32Header(MaxRecord+1, Text, true)
	})
}

// TestLen32RoundTrip: messages cut into random records by Len32Encoder
// decode to themselves through every kind of buffer.
func TestLen32RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 40 {
		msgs := randMessages(r, 1+r.IntN(5), 30, false)
		var stream []byte
		for _, m := range msgs {
			stream = append(stream, encode(Len32Encoder{}, cut(r, m)...)...)
		}
		ss := []setup{whole(stream), {buf: 1, read: 1, dst: 1}, {buf: 5, read: 3, dst: 2}, {buf: 64, read: 64, dst: 64}}
		for j := range 5 {
			ss = append(ss, setup{buf: 1 + r.IntN(len(stream)+1), read: 1 + r.IntN(20), dst: 1 + j})
		}
		for _, s := range ss {
			got, err := pump(t, NewLen32Decoder(), stream, s)
			if err != nil || !slices.Equal(got, msgs) {
				t.Fatalf("%d: %v: got %v, %v; want %v", i, s, got, err, msgs)
			}
		}
	}
}

// cut splits m into pieces at random places, code points included.
func cut(r *rand.Rand, m msg) []Piece {
	data := []byte(m.Data)
	var ps []Piece
	for first := true; ; first = false {
		k := r.IntN(len(data) + 1)
		if r.IntN(3) == 0 {
			k = len(data)
		}
		ps = append(ps, Piece{Data: data[:k], Kind: m.Kind, First: first, Final: k == len(data)})
		if data = data[k:]; ps[len(ps)-1].Final {
			return ps
		}
	}
}
