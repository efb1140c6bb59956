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

// What the bridge writes to a mux child when client 1 connects, says "hi"
// and leaves with 1000 "bye": header, then payload, of each record.
func ExampleMuxEncoder() {
	var enc framing.MuxEncoder
	whole := func(k framing.Kind, data []byte) framing.Piece {
		return framing.Piece{Data: data, Kind: k, Conn: 1, First: true, Final: true}
	}
	for _, p := range []framing.Piece{
		whole(framing.Open, framing.AppendMuxEnv(nil, []string{"REMOTE_ADDR=127.0.0.1"})),
		whole(framing.Text, []byte("hi")),
		whole(framing.Close, framing.AppendMuxClose(nil, 1000, "bye")),
	} {
		fmt.Printf("% x | % x\n", enc.AppendPrefix(nil, p), p.Data)
	}
	// Output:
	// 01 00 00 00 00 00 00 01 00 00 00 16 | 52 45 4d 4f 54 45 5f 41 44 44 52 3d 31 32 37 2e 30 2e 30 2e 31 00
	// 02 00 00 00 00 00 00 01 00 00 00 02 | 68 69
	// 04 00 00 00 00 00 00 01 00 00 00 05 | 03 e8 62 79 65
}

// Reading what a mux child writes: a message for every client, then the
// close of client 1.
func ExampleMuxDecoder() {
	stdout := []byte("\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05hello" +
		"\x04\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x05\x03\xe8bye")
	dec := framing.NewMuxDecoder()
	pieces, _, err := dec.Decode(make([]framing.Piece, 0, 8), stdout, false, true)
	for _, p := range pieces {
		switch {
		case p.Kind == framing.Close:
			code, reason, _ := framing.ParseMuxClose(p.Data)
			fmt.Printf("close connection %d: %d %q\n", p.Conn, code, reason)
		case p.Conn == 0:
			fmt.Printf("%s to every client: %q\n", p.Kind, p.Data)
		default:
			fmt.Printf("%s to connection %d: %q\n", p.Kind, p.Conn, p.Data)
		}
	}
	fmt.Println("error:", err)
	// Output:
	// text to every client: "hello"
	// close connection 1: 1000 "bye"
	// error: <nil>
}

// A CGI program's output: with a header block, the fields say what the
// reply is; without one, all the output is the reply.
func ExampleParseCGIResponse() {
	for _, out := range []string{
		"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such user\n",
		"just the answer\n",
		"Content-Type: text/plain\nforgot the blank line\n",
	} {
		r, err := framing.ParseCGIResponse([]byte(out))
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("header=%t status=%d %q text=%t body=%q\n", r.HasHeader, r.Status, r.Reason, r.IsText(), r.Body)
	}
	// Output:
	// header=true status=404 "Not Found" text=true body="no such user\n"
	// header=false status=200 "" text=true body="just the answer\n"
	// framing: malformed CGI response header: line 2 "forgot the blank line": not a "Name: value" field
}
