package framing_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wsbridge/wsbridge/framing"
)

// A Decoder driven the way the bridge drives one: read into a fixed
// buffer, decode, send the pieces, keep what was not consumed. The buffer
// here is tiny so that the long line streams through as fragments.
func ExampleDecoder() {
	stdout := strings.NewReader("hello\r\nwörld\na line longer than the buffer\n\xff\xfe\nno newline")
	dec, _, _ := framing.New("line")

	buf := make([]byte, 16)
	dst := make([]framing.Piece, 0, 8)
	have, eof := 0, false
	for {
		if !eof && have < len(buf) {
			n, err := stdout.Read(buf[have:])
			have += n
			eof = errors.Is(err, io.EOF)
		}
		pieces, n, err := dec.Decode(dst, buf[:have], have == len(buf), eof)
		for _, p := range pieces { // send them before reusing buf
			fmt.Printf("%-6s first=%-5t final=%-5t %q\n", p.Kind, p.First, p.Final, p.Data)
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		have = copy(buf, buf[n:have])
		if eof && have == 0 && len(pieces) == 0 {
			return
		}
	}
	// Output:
	// text   first=true  final=true  "hello"
	// text   first=true  final=true  "wörld"
	// text   first=true  final=false "a line longer th"
	// text   first=false final=true  "an the buffer"
	// binary first=true  final=true  "\xff\xfe"
	// text   first=true  final=true  "no newline"
}

// Framing two messages for a len32 child: "hi" whole, then "hello" as two
// fragments, as they arrive from the WebSocket.
func ExampleLen32Encoder() {
	var enc framing.Len32Encoder
	pieces := []framing.Piece{
		{Data: []byte("hi"), Kind: framing.Text, First: true, Final: true},
		{Data: []byte("hel"), Kind: framing.Text, First: true},
		{Data: []byte("lo"), Kind: framing.Text, Final: true},
	}
	var stdin []byte
	for _, p := range pieces {
		stdin = enc.AppendPrefix(stdin, p) // at most framing.MaxPrefix bytes
		stdin = append(stdin, p.Data...)   // the bridge writes the data itself, uncopied
		stdin = append(stdin, enc.Suffix(p)...)
	}
	fmt.Printf("% x\n", stdin)
	// Output:
	// 80 00 00 02 68 69 c0 00 00 03 68 65 6c 80 00 00 02 6c 6f
}

// Checking a text message that arrives in fragments: the surrogate is
// rejected at its second byte, before the message ends.
func ExampleUTF8() {
	var v framing.UTF8
	for _, frag := range []string{"κό", "\xcf", "\x83με ", "\xed", "\xa0\x80", "more"} {
		if !v.Write([]byte(frag)) {
			fmt.Printf("invalid at fragment %q\n", frag)
			break
		}
		fmt.Printf("ok %q\n", frag)
	}
	// Output:
	// ok "κό"
	// ok "\xcf"
	// ok "\x83με "
	// ok "\xed"
	// invalid at fragment "\xa0\x80"
}
