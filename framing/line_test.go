package framing

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// show renders pieces for comparison: `text first "ab" | text final "c"`.
func show(ps []Piece) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(p.Kind.String())
		if p.First {
			b.WriteString(" first")
		}
		if p.Final {
			b.WriteString(" final")
		}
		if p.Conn != 0 {
			fmt.Fprintf(&b, " #%d", p.Conn)
		}
		fmt.Fprintf(&b, " %+q", p.Data)
	}
	return b.String()
}

// step is one Decode call: buf, its flags and dst's capacity (0 means 16,
// -1 none),
// with the pieces, byte count and error it must return.
type step struct {
	buf       string
	full, eof bool
	cap       int
	want      string // show of the pieces
	n         int
	err       error // to match with errors.Is
}

// runSteps runs steps through d in order.
func runSteps(t *testing.T, d Decoder, steps []step) {
	t.Helper()
	for i, s := range steps {
		c := s.cap // 0: 16; -1: none
		switch c {
		case 0:
			c = 16
		case -1:
			c = 0
		}
		got, n, err := d.Decode(make([]Piece, 0, c), []byte(s.buf), s.full, s.eof)
		if !errors.Is(err, s.err) || (err == nil) != (s.err == nil) {
			t.Fatalf("step %d: Decode(%q, full=%t, eof=%t): error %v, want %v", i, s.buf, s.full, s.eof, err, s.err)
		}
		if show(got) != s.want || n != s.n {
			t.Fatalf("step %d: Decode(%q, full=%t, eof=%t) =\n\t%s, %d\nwant\n\t%s, %d",
				i, s.buf, s.full, s.eof, show(got), n, s.want, s.n)
		}
	}
}

func TestLineDecoderSteps(t *testing.T) {
	const ff = `"\ufffd"`
	tests := []struct {
		name     string
		steps    []step
		replaced int
	}{
		{name: "lines and CRLF", steps: []step{
			{buf: "a\nb\r\n\n\r\n", want: `text first final "a" | text first final "b" | text first final "" | text first final ""`, n: 8},
		}},
		{name: "partial line waits", steps: []step{
			{buf: "abc", want: "", n: 0},
			{buf: "abc\n", want: `text first final "abc"`, n: 4},
		}},
		{name: "full buffer without newline streams", steps: []step{
			{buf: "abcd", full: true, want: `text first "abcd"`, n: 4},
			{buf: "ef", full: true, want: `text "ef"`, n: 2},
			{buf: "g\nh", want: `text final "g"`, n: 2},
		}},
		{name: "full buffer after a whole line waits", steps: []step{
			{buf: "a\nbcd", full: true, want: `text first final "a"`, n: 2},
		}},
		{name: "trailing CR left for the next call", steps: []step{
			{buf: "abc\r", full: true, want: `text first "abc"`, n: 3},
			{buf: "\r\nx", want: `text final ""`, n: 2},
		}},
		{name: "CR not followed by LF is data", steps: []step{
			{buf: "abc\r", full: true, want: `text first "abc"`, n: 3},
			{buf: "\rd\n", want: `text final "\rd"`, n: 3},
		}},
		{name: "CR alone in a one-byte buffer then LF", steps: []step{
			{buf: "\r", full: true, want: "", n: 1},
			{buf: "\n", full: true, want: `text first final ""`, n: 1},
		}},
		{name: "CR alone in a one-byte buffer then data", steps: []step{
			{buf: "\r", full: true, want: "", n: 1},
			{buf: "x", full: true, want: `text first "\r" | text "x"`, n: 1},
			{buf: "\n", full: true, want: `text final ""`, n: 1},
		}},
		{name: "CR alone in a one-byte buffer then eof", steps: []step{
			{buf: "\r", full: true, want: "", n: 1},
			{buf: "", eof: true, want: `text first final "\r"`, n: 0},
			{buf: "", eof: true, want: "", n: 0},
		}},
		{name: "eof delivers a last line without newline", steps: []step{
			{buf: "a\nb\r", eof: true, want: `text first final "a" | text first final "b\r"`, n: 4},
			{buf: "", eof: true, want: "", n: 0},
		}},
		{name: "eof ends a streamed line", steps: []step{
			{buf: "abcd", full: true, want: `text first "abcd"`, n: 4},
			{buf: "", eof: true, want: `text final ""`, n: 0},
		}},
		{name: "dst full stops early", steps: []step{
			{buf: "a\nb\nc", eof: true, cap: 1, want: `text first final "a"`, n: 2},
			{buf: "b\nc", eof: true, cap: 1, want: `text first final "b"`, n: 2},
			{buf: "c", eof: true, cap: 1, want: `text first final "c"`, n: 1},
		}},
		{name: "invalid line is binary", steps: []step{
			{buf: "ok\n\xff\xfe\r\n\xed\xa0\x80\n\xc0\xaf\n\xf4\x90\x80\x80\n", want: `text first final "ok" | binary first final "\xff\xfe" | binary first final "\xed\xa0\x80" | binary first final "\xc0\xaf" | binary first final "\xf4\x90\x80\x80"`, n: 19},
		}},
		{name: "code point cut by a full buffer is left for the next call", steps: []step{
			{buf: "ab\xe2\x82", full: true, want: `text first "ab"`, n: 2},
			{buf: "\xe2\x82\xac\n", want: `text final "\u20ac"`, n: 4},
		}},
		{name: "invalid first piece makes a binary message", steps: []step{
			{buf: "a\xffb", full: true, want: `binary first "a\xffb"`, n: 3},
			{buf: "\xe2\x82", full: true, want: `binary "\xe2\x82"`, n: 2},
			{buf: "\xfe\n", want: `binary final "\xfe"`, n: 2},
		}},
		{name: "invalid bytes in later pieces become U+FFFD", replaced: 1, steps: []step{
			{buf: "abc", full: true, want: `text first "abc"`, n: 3},
			{buf: "d\xffe\n", want: `text "d" | text ` + ff + ` | text final "e"`, n: 4},
		}},
		{name: "maximal subparts, Unicode table 3-8", replaced: 6, steps: []step{
			{buf: "x", full: true, want: `text first "x"`, n: 1},
			{buf: "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64\n", want: `text "a" | text ` + ff + ` | text ` + ff + ` | text ` + ff + ` | text "b" | text ` + ff + ` | text "c" | text ` + ff + ` | text ` + ff + ` | text final "d"`, n: 14},
		}},
		{name: "surrogate and overlong in later pieces", replaced: 5, steps: []step{
			{buf: "x", full: true, want: `text first "x"`, n: 1},
			{buf: "\xed\xa0\x80\xe0\x80\n", want: `text ` + ff + ` | text ` + ff + ` | text ` + ff + ` | text ` + ff + ` | text final ` + ff, n: 6},
		}},
		{name: "code point cut short at the line's end", replaced: 1, steps: []step{
			{buf: "x", full: true, want: `text first "x"`, n: 1},
			{buf: "\xe2\x82\r\n", want: `text final ` + ff, n: 4},
		}},
		{name: "replacement stops when dst fills", replaced: 2, steps: []step{
			{buf: "x", full: true, want: `text first "x"`, n: 1},
			{buf: "a\xffb\xff", full: true, cap: 2, want: `text "a" | text ` + ff, n: 2},
			{buf: "b\xff", full: true, cap: 2, want: `text "b" | text ` + ff, n: 2},
		}},
		{name: "code point held in one-byte buffers completes", steps: []step{
			{buf: "\xe2", full: true, want: "", n: 1},
			{buf: "\x82", full: true, want: "", n: 1},
			{buf: "\xac", full: true, cap: 2, want: `text first "\xe2" | text "\x82"`, n: 1},
			{buf: "\n", full: true, want: `text "\xac" | text final ""`, n: 1},
		}},
		{name: "code point held in one-byte buffers breaks the first piece", steps: []step{
			{buf: "\xe2", full: true, want: "", n: 1},
			{buf: "A", full: true, want: `binary first "\xe2" | binary "A"`, n: 1},
			{buf: "", eof: true, want: `binary final ""`, n: 0},
		}},
		{name: "code point held in one-byte buffers breaks a text message", replaced: 1, steps: []step{
			{buf: "ok", full: true, want: `text first "ok"`, n: 2},
			{buf: "\xf0", full: true, want: "", n: 1},
			{buf: "\x9f", full: true, want: "", n: 1},
			{buf: "\n", full: true, want: `text ` + ff + ` | text final ""`, n: 1},
		}},
		{name: "code point held at eof", steps: []step{
			{buf: "\xe2", full: true, want: "", n: 1},
			{buf: "\x82", eof: true, want: `binary first "\xe2" | binary "\x82" | binary final ""`, n: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := new(LineDecoder)
			runSteps(t, d, tt.steps)
			if d.Replaced() != tt.replaced {
				t.Errorf("Replaced() = %d, want %d", d.Replaced(), tt.replaced)
			}
		})
	}
}

// TestLineDecoder checks messages over every buffer size: streams of valid
// UTF-8 (or whose invalid lines are invalid from their first byte) decode
// to the same messages however they are cut.
func TestLineDecoder(t *testing.T) {
	long := strings.Repeat("ünïcödé €𝄞 ", 6)
	tests := []struct {
		name string
		in   string
		want []msg
	}{
		{"empty stream", "", nil},
		{"one line", "hello\n", []msg{txt("hello")}},
		{"two lines", "a\nb\n", []msg{txt("a"), txt("b")}},
		{"CRLF", "a\r\nb\r\n", []msg{txt("a"), txt("b")}},
		{"lone CR is data", "a\rb\n\r\n", []msg{txt("a\rb"), txt("")}},
		{"CR CR LF keeps one CR", "a\r\r\n", []msg{txt("a\r")}},
		{"empty lines", "\n\n\r\n", []msg{txt(""), txt(""), txt("")}},
		{"eof without newline", "a\nlast", []msg{txt("a"), txt("last")}},
		{"eof after CR", "a\r", []msg{txt("a\r")}},
		{"unicode", "héllo\n日本語\n😀\n", []msg{txt("héllo"), txt("日本語"), txt("😀")}},
		{"long multibyte line", long + "\r\n" + long, []msg{txt(long), txt(long)}},
		{"invalid from the first byte", "\xff\xfeabc\n\xc0\x80\n", []msg{bin("\xff\xfeabc"), bin("\xc0\x80")}},
		{"U+FFFD itself is text", "\xef\xbf\xbd\n", []msg{txt("\uFFFD")}},
		{"max code point", "\xf4\x8f\xbf\xbf\n", []msg{txt("\U0010FFFF")}},
		{"noncharacters are text", "\xef\xbf\xbe\xef\xbf\xbf\n", []msg{txt("\uFFFE\uFFFF")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := []byte(tt.in)
			for _, s := range append(setups(stream), whole(stream)) {
				got, err := pump(t, NewLineDecoder(), stream, s)
				if err != nil {
					t.Fatalf("%v: %v", s, err)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("%v: got %v, want %v", s, got, tt.want)
				}
			}
		})
	}
}

// lineAgrees checks that stream decodes through every setup as it does
// whole, except that a line invalid as a whole may come out as text when
// its first piece was valid: then it must be the line with U+FFFD
// replacements, and Replaced must count them. It also checks that no text
// message is invalid UTF-8.
func lineAgrees(t testing.TB, stream []byte, ss []setup) {
	t.Helper()
	want, err := pump(t, NewLineDecoder(), stream, whole(stream))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range want {
		if m.Kind == Text != utf8.ValidString(m.Data) {
			t.Fatalf("whole: %v: kind does not follow validity", m)
		}
	}
	for _, s := range ss {
		d := new(LineDecoder)
		got, err := pump(t, d, stream, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%v: %d messages %v, want %d %v", s, len(got), got, len(want), want)
		}
		subs := 0
		for i := range got {
			if got[i] == want[i] {
				continue
			}
			fixed, n := whatwg([]byte(want[i].Data))
			if want[i].Kind != Binary || got[i] != txt(fixed) {
				t.Fatalf("%v: message %d is %v, want %v or text %q", s, i, got[i], want[i], fixed)
			}
			subs += n
		}
		if d.Replaced() != subs {
			t.Fatalf("%v: Replaced() = %d, want %d", s, d.Replaced(), subs)
		}
	}
}

func TestLineDecoderInvalidUTF8(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"invalid byte mid-line", "abc\xffdef\n"},
		{"surrogate", "abc\xed\xa0\x80def\n"},
		{"overlong", "abc\xe0\x80\xafdef\r\n"},
		{"over U+10FFFF", "abc\xf4\x90\x80\x80def\n"},
		{"truncated at line end", "abc€\xe2\x82\n"},
		{"truncated before CR", "abc\xf0\x9f\x98\r\n"},
		{"truncated at eof", "abc\xf0\x9f\x98"},
		{"table 3-8", "ok \x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64\n"},
		{"mixed lines", "héllo\nwor\xffld\n\xfe\nnice 😀 and bad \xc3\x28 too\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lineAgrees(t, []byte(tt.in), setups([]byte(tt.in)))
		})
	}
}

func TestLineEncoder(t *testing.T) {
	tests := []struct {
		name string
		p    Piece
		want string // prefix + data + suffix
	}{
		{"whole text", Piece{Data: []byte("hi"), Kind: Text, First: true, Final: true}, "hi\n"},
		{"whole binary", Piece{Data: []byte{0, 1}, Kind: Binary, First: true, Final: true}, "\x00\x01\n"},
		{"empty message", Piece{Kind: Text, First: true, Final: true}, "\n"},
		{"first fragment", Piece{Data: []byte("ab"), Kind: Text, First: true}, "ab"},
		{"middle fragment", Piece{Data: []byte("cd"), Kind: Text}, "cd"},
		{"last fragment", Piece{Data: []byte("ef"), Kind: Text, Final: true}, "ef\n"},
		{"embedded newline is not escaped", Piece{Data: []byte("a\nb"), Kind: Text, First: true, Final: true}, "a\nb\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encode(LineEncoder{}, tt.p); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// encode frames p with e, as the bridge writes it.
func encode(e Encoder, ps ...Piece) string {
	var out []byte
	for _, p := range ps {
		out = e.AppendPrefix(out, p)
		out = append(out, p.Data...)
		out = append(out, e.Suffix(p)...)
	}
	return string(out)
}

// randMessages returns n messages with data of up to max bytes, each text
// or binary; text is valid UTF-8 mixing widths. noLF leaves out '\n', and
// '\r' at the end, and makes binary messages invalid UTF-8 (the line
// framing's kinds follow validity).
func randMessages(r *rand.Rand, n, max int, noLF bool) []msg {
	runes := []rune("aZ09 \t\r\n~é߿ࠀ€\uFFFD\uFFFF𐀀😀\U0010FFFF")
	ms := make([]msg, n)
	for i := range ms {
		size := r.IntN(max + 1)
		var b []byte
		if r.IntN(3) == 0 {
			for len(b) < size {
				b = append(b, byte(r.IntN(256)))
			}
			if noLF {
				b = bytes.ReplaceAll(b, []byte("\n"), []byte("\xff"))
				b = append(b, 0xff)
			}
			ms[i] = bin(string(b))
			continue
		}
		for len(b) < size {
			c := runes[r.IntN(len(runes))]
			if noLF && c == '\n' {
				continue
			}
			b = utf8.AppendRune(b, c)
		}
		if noLF && len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
		ms[i] = txt(string(b))
	}
	return ms
}

// TestLineRoundTrip: messages without newlines, framed by LineEncoder,
// decode to themselves (when the buffer holds a whole line; across smaller
// buffers lineAgrees holds).
func TestLineRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		msgs := randMessages(r, 1+r.IntN(6), 40, true)
		var stream []byte
		for _, m := range msgs {
			stream = append(stream, encode(LineEncoder{}, Piece{Data: []byte(m.Data), Kind: m.Kind, First: true, Final: true})...)
		}
		for _, s := range []setup{whole(stream), {buf: 200, read: 7, dst: 2}} {
			got, err := pump(t, NewLineDecoder(), stream, s)
			if err != nil || !slices.Equal(got, msgs) {
				t.Fatalf("%d: %v: got %v, %v; want %v", i, s, got, err, msgs)
			}
		}
		lineAgrees(t, stream, []setup{{7, 3, 2}, {5, 5, 1}, {1, 1, 4}})
	}
}
