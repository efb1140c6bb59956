package bridge

// The rows of TestConformance's group 6: UTF-8.

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

const kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

// Group 6: UTF-8.
func utf8Rows() []confRow {
	valid := func(name, s string, ws ...confWrite) confRow {
		return confRow{name: name, writes: ws, want: []confEvent{textMsg(s)}}
	}
	invalid := func(name string, ws ...confWrite) confRow {
		return confRow{name: name, writes: ws, end: endClose, codes: []int{codeBadData}}
	}
	hello := "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"
	bad := kosme + "\xed\xa0\x80" + "edited"
	rows := []confRow{
		valid("6.1.1 text of length 0", "", sendFrames(textFrame(""))),
		valid("6.1.2 3 empty fragments", "", sendFrames(frag(wstest.OpText, false, ""), frag(wstest.OpContinuation, false, ""), frag(wstest.OpContinuation, true, ""))),
		valid("6.1.3 empty, non-empty, empty fragments", "middle frame payload", sendFrames(frag(wstest.OpText, false, ""), frag(wstest.OpContinuation, false, "middle frame payload"), frag(wstest.OpContinuation, true, ""))),
		valid("6.2.1 valid UTF-8 in one frame", hello, sendFrames(textFrame(hello))),
		valid("6.2.2 valid UTF-8 in 2 fragments split on a code point", hello, sendFrames(frag(wstest.OpText, false, hello[:17]), frag(wstest.OpContinuation, true, hello[17:]))),
		valid("6.2.3 valid UTF-8 in 1-byte fragments", hello, sendFrames(wstest.Fragments(wstest.OpText, []byte(hello), 1)...)),
		valid("6.2.4 kosme in 1-byte fragments", kosme, sendFrames(wstest.Fragments(wstest.OpText, []byte(kosme), 1)...)),
		invalid("6.3.1 invalid UTF-8 in one frame", sendFrames(textFrame(bad))),
		invalid("6.3.2 invalid UTF-8 in 1-byte fragments", sendFrames(wstest.Fragments(wstest.OpText, []byte(bad), 1)...)),
	}

	rows = append(rows,
		confRow{name: "6.x code point split around a ping", writes: []confWrite{sendFrames(frag(wstest.OpText, false, "\xce"), pingFrame("p"), frag(wstest.OpContinuation, true, "\xba"))},
			want: []confEvent{pongMsg("p"), textMsg("\xce\xba")}},
		confRow{name: "6.x binary is not checked for UTF-8", writes: []confWrite{sendFrames(wstest.Frame{Op: wstest.OpBinary, Payload: []byte("\xed\xa0")}, wstest.Frame{Fin: true, Op: wstest.OpContinuation, Payload: []byte("\x80\xff\xe2\x82")}, textFrame("after"))},
			want: []confEvent{binaryMsg([]byte("\xed\xa0\x80\xff\xe2\x82")), textMsg("after")}},
		invalid("6.x text ends inside a code point split between fragments", sendFrames(frag(wstest.OpText, false, "a\xe2"), frag(wstest.OpContinuation, true, "\x82"))),
		invalid("6.x 2nd text message invalid after a valid one", sendFrames(textFrame(kosme), textFrame("ok \xc0\xaf"))),
	)
	rows[len(rows)-1].want, rows[len(rows)-1].alts = []confEvent{textMsg(kosme)}, [][]confEvent{nil}

	// 6.4: fail fast. The part that makes the text invalid goes out after a
	// wait during which the connection must stay open, and the rest is never
	// sent: only a validator that fails at once closes the connection.
	const failFastPart1 = kosme
	const failFastPart2 = "\xf4\x90\x80\x80" // U+110000, beyond Unicode
	wait := 250 * time.Millisecond
	then := func(w confWrite) confWrite { w.open = wait; return w }
	whole := wstest.AppendFrame(nil, textFrame(failFastPart1+failFastPart2+"edited"))
	hdr := len(whole) - len(failFastPart1+failFastPart2+"edited")
	rows = append(rows,
		invalid("6.4.1 fail fast: invalid 2nd fragment, 3rd never sent",
			sendFrames(frag(wstest.OpText, false, failFastPart1)), then(sendFrames(frag(wstest.OpContinuation, false, failFastPart2)))),
		invalid("6.4.2 fail fast: 2nd fragment only the byte that makes it invalid",
			sendFrames(frag(wstest.OpText, false, failFastPart1+"\xf4")), then(sendFrames(frag(wstest.OpContinuation, false, "\x90")))),
		invalid("6.4.3 fail fast: one frame sent in chops, invalid 2nd chop",
			sendRaw(whole[:hdr+11]), then(sendRaw(whole[hdr+11:hdr+15]))),
		invalid("6.4.4 fail fast: one frame in chops, 2nd chop only the invalid byte",
			sendRaw(whole[:hdr+12]), then(sendRaw(whole[hdr+12:hdr+13]))),
		invalid("6.4.x fail fast: surrogate lead in the 1st fragment, its tail never sent",
			sendFrames(frag(wstest.OpText, false, kosme+"\xed\xa0"))),
	)

	// Split at every byte: code points cut between two fragments are valid.
	for _, s := range []struct{ label, text string }{
		{"kosme", kosme}, {"U+24B62", "hello\xf0\xa4\xad\xa2world"}, {"U+FFFD", "\xef\xbf\xbd"}, {"U+10FFFF", "\xf4\x8f\xbf\xbf"},
	} {
		for k := 1; k < len(s.text); k++ {
			rows = append(rows, valid(fmt.Sprintf("6.2.x %s split at byte %d", s.label, k), s.text,
				sendFrames(frag(wstest.OpText, false, s.text[:k]), frag(wstest.OpContinuation, true, s.text[k:]))))
		}
	}
	for k := 1; k < len(bad); k++ {
		rows = append(rows, invalid(fmt.Sprintf("6.3.x invalid text split at byte %d", k),
			sendFrames(frag(wstest.OpText, false, bad[:k]), frag(wstest.OpContinuation, true, bad[k:]))))
	}

	// 6.5 to 6.23: Markus Kuhn's UTF-8 decoder tests, each in one frame.
	for i, group := range utf8Sequences() {
		for j, seq := range group.seqs {
			name := fmt.Sprintf("6.%d.%d %s %s", 5+i, j+1, group.title, hexName(seq.text))
			if seq.valid {
				rows = append(rows, valid(name, seq.text, sendFrames(textFrame(seq.text))))
			} else {
				rows = append(rows, invalid(name, sendFrames(textFrame(seq.text))))
			}
		}
	}
	return rows
}

func hexName(s string) string {
	if len(s) > 12 {
		return hex.EncodeToString([]byte(s[:12])) + "..."
	}
	return hex.EncodeToString([]byte(s))
}

type utf8Seq struct {
	valid bool
	text  string
}

// utf8Sequences lists the sequences of Autobahn's cases 6.5 to 6.23, in
// its order, which is that of Markus Kuhn's UTF-8-test.txt.
func utf8Sequences() []struct {
	title string
	seqs  []utf8Seq
} {
	ok := func(ss ...string) []utf8Seq {
		var out []utf8Seq
		for _, s := range ss {
			out = append(out, utf8Seq{true, s})
		}
		return out
	}
	bad := func(ss ...string) []utf8Seq {
		var out []utf8Seq
		for _, s := range ss {
			out = append(out, utf8Seq{false, s})
		}
		return out
	}
	var prefixes []utf8Seq
	for i := 1; i <= len(kosme); i++ {
		prefixes = append(prefixes, utf8Seq{utf8.ValidString(kosme[:i]), kosme[:i]})
	}
	var contAll []byte
	for b := 0x80; b < 0xbf; b++ {
		contAll = append(contAll, byte(b))
	}
	var lonely []utf8Seq
	for _, r := range [][2]int{{0xc0, 0xdf}, {0xe0, 0xef}, {0xf0, 0xf7}, {0xf8, 0xfb}, {0xfc, 0xfd}} {
		var s []byte
		for b := r[0]; b < r[1]; b++ {
			s = append(s, byte(b), 0x20)
		}
		lonely = append(lonely, utf8Seq{false, string(s)})
	}
	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf"}
	nonchars := ok("\xef\xbf\xbe", "\xef\xbf\xbf")
	for _, z1 := range []string{"\xf0", "\xf1", "\xf2", "\xf3", "\xf4"} {
		for _, z2 := range []string{"\x8f", "\x9f", "\xaf", "\xbf"} {
			if z1 == "\xf4" && z2 != "\x8f" {
				continue // above U+10FFFF
			}
			for _, z3 := range []string{"\xbe", "\xbf"} {
				if z1 == "\xf0" && z2 == "\x8f" {
					continue // overlong
				}
				nonchars = append(nonchars, utf8Seq{true, z1 + z2 + "\xbf" + z3})
			}
		}
	}
	return []struct {
		title string
		seqs  []utf8Seq
	}{
		{"valid", ok("hello\x24world", "hello\xc2\xa2world", "hello\xe2\x82\xacworld", "hello\xf0\xa4\xad\xa2world", kosme)},
		{"prefix", prefixes},
		{"first of its length", ok("\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80")},
		{"first 5-6 byte", bad("\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80")},
		{"last of its length", ok("\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf")},
		{"last 4-6 byte", bad("\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf")},
		{"boundary", append(ok("\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf"), bad("\xf4\x90\x80\x80")...)},
		{"continuation", bad("\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf", "\x80\xbf\x80\xbf\x80", "\x80\xbf\x80\xbf\x80\xbf", string(contAll))},
		{"lonely start", lonely},
		{"last byte missing", bad(missing...)},
		{"incomplete sequences", bad(strings.Join(missing, ""))},
		{"impossible", bad("\xfe", "\xff", "\xfe\xfe\xff\xff")},
		{"overlong ASCII", bad("\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf")},
		{"maximum overlong", bad("\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf")},
		{"overlong NUL", bad("\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80")},
		{"surrogate", bad("\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf")},
		{"surrogate pair", bad("\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80", "\xed\xad\xbf\xed\xbf\xbf",
			"\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf")},
		{"noncharacter", nonchars},
		{"special", ok("\xef\xbf\xb9", "\xef\xbf\xba", "\xef\xbf\xbb", "\xef\xbf\xbc", "\xef\xbf\xbd", "\xef\xbf\xbe", "\xef\xbf\xbf")},
	}
}
