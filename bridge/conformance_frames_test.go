package bridge

// The rows of TestConformance's groups 1 to 5, and what builds them.

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// sendFrames is a step that sends frames in one write.
func sendFrames(frames ...wstest.Frame) confWrite {
	var w confWrite
	for _, f := range frames {
		w.data = wstest.AppendFrame(w.data, f)
		w.closes = w.closes || f.Op == wstest.OpClose
	}
	return w
}

func sendRaw(b []byte) confWrite { return confWrite{data: b} }

// chopped sends w in pieces of n bytes, as Autobahn's chopsize.
func (w confWrite) chopped(n int) confWrite { w.chop = n; return w }

// after sleeps d before w.
func (w confWrite) after(d time.Duration) confWrite { w.pause = d; return w }

// frameWise splits frames into one step each, a few milliseconds apart:
// Autobahn's sync, which flushes every frame on its own.
func frameWise(frames ...wstest.Frame) []confWrite {
	var ws []confWrite
	for i, f := range frames {
		w := sendFrames(f)
		if i > 0 {
			w.pause = 5 * time.Millisecond
		}
		ws = append(ws, w)
	}
	return ws
}

// Frames.
func frag(op byte, fin bool, p string) wstest.Frame {
	return wstest.Frame{Fin: fin, Op: op, Payload: []byte(p)}
}
func textFrame(p string) wstest.Frame { return frag(wstest.OpText, true, p) }
func binaryFrame(p []byte) wstest.Frame {
	return wstest.Frame{Fin: true, Op: wstest.OpBinary, Payload: p}
}
func pingFrame(p string) wstest.Frame { return frag(wstest.OpPing, true, p) }
func pongFrame(p string) wstest.Frame { return frag(wstest.OpPong, true, p) }
func closeFrame(code int, reason string) wstest.Frame {
	return wstest.Frame{Fin: true, Op: wstest.OpClose, Payload: wstest.ClosePayload(code, reason)}
}

// pingsUnderLoad sends 10 pings while the bridge's writer is blocked on
// a client that does not read. The bridge keeps one pending pong (RFC 6455
// 5.5.3 allows answering only the latest ping), so fewer than 10 may come
// back, unlike what Autobahn's 2.10 expects on an idle connection; but the
// latest ping must be answered, and pongs keep their order.
func pingsUnderLoad(t *testing.T) {
	t.Parallel()
	// 8 MB of output: more than the socket buffers hold, so the bridge's
	// writer blocks until the client reads.
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{{Command: []string{testChildPath(t), "flood", "8000", "1000"}}}})
	c := wstest.MustDial(t, addr, wstest.Options{Path: "/"})
	var pings []wstest.Frame
	for i := range 10 {
		pings = append(pings, pingFrame(fmt.Sprintf("payload-%d", i)))
	}
	time.Sleep(100 * time.Millisecond)
	if err := c.WriteChunks(sendFrames(pings...).data, 0, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the bridge reads the pings, its writer still blocked

	events := make(chan confEvent, 1024)
	go readEvents(c, time.Now().Add(30*time.Second), events)
	defer func() {
		c.Conn.Close()
		for range events {
		}
	}()
	r := &confRun{t: t, events: events}
	if !r.wait(func() bool { return r.closed != nil }, 30*time.Second) {
		t.Fatalf("no close frame: %v", r.ended)
	}
	var pongs []string
	for _, ev := range r.got {
		if ev.kind == evPong {
			pongs = append(pongs, string(ev.data))
		}
	}
	t.Logf("%d of 10 pings answered: %q", len(pongs), pongs)
	switch {
	case len(pongs) == 0 || pongs[len(pongs)-1] != "payload-9":
		t.Errorf("the latest ping was not answered: pongs %q", pongs)
	case !slices.IsSorted(pongs):
		t.Errorf("pongs out of order: %q", pongs)
	}
	_ = c.WriteClose(r.closed.code, "")
	if !r.wait(func() bool { return r.ended != nil }, 5*time.Second) || r.ended.err != nil {
		t.Errorf("unclean TCP close: %v", r.ended)
	}
}

// stars and pattern make payloads. pattern's bytes vary so that a
// reordered or repeated piece shows; its text mixes code points of 1 to 4
// bytes, so chops and fragments of any size cut some of them.
func stars(n int) string { return strings.Repeat("*", n) }

func pattern(n int, text bool) []byte {
	if !text {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*31 + i>>8)
		}
		return b
	}
	const unit = "BAsd7&jh23 \u03ba\u1f79\u03c3\u03bc\u03b5 \u20ac \U00024b62 "
	var period []byte
	for i := range 10 {
		period = append(period, unit+strconv.Itoa(i)...)
	}
	b := bytes.Repeat(period, n/len(period)+1)[:n]
	// Replace a code point cut by the end with ASCII.
	j := n - 1
	for j > 0 && j > n-4 && !utf8.RuneStart(b[j]) {
		j--
	}
	if n > 0 && !utf8.Valid(b[j:]) {
		copy(b[j:], "***")
	}
	return b
}

// Group 1: framing.
func framingRows() []confRow {
	var rows []confRow
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536}
	for i, n := range sizes {
		rows = append(rows,
			confRow{name: fmt.Sprintf("1.1.%d text %d bytes", i+1, n), writes: []confWrite{sendFrames(textFrame(stars(n)))}, want: []confEvent{textMsg(stars(n))}},
			confRow{name: fmt.Sprintf("1.2.%d binary %d bytes", i+1, n), writes: []confWrite{sendFrames(binaryFrame(bytes.Repeat([]byte{0xFE}, n)))}, want: []confEvent{binaryMsg(bytes.Repeat([]byte{0xFE}, n))}},
		)
	}
	rows = append(rows,
		confRow{name: "1.1.8 text 65536 bytes in 997-byte chops", writes: []confWrite{sendFrames(textFrame(stars(65536))).chopped(997)}, want: []confEvent{textMsg(stars(65536))}},
		confRow{name: "1.2.8 binary 65536 bytes in 997-byte chops", writes: []confWrite{sendFrames(binaryFrame(bytes.Repeat([]byte{0xFE}, 65536))).chopped(997)}, want: []confEvent{binaryMsg(bytes.Repeat([]byte{0xFE}, 65536))}},
		confRow{name: "1.x unmasked text frame", writes: []confWrite{sendFrames(wstest.Frame{Fin: true, Op: wstest.OpText, Unmasked: true, Payload: []byte("Hello")})}, end: endClose, codes: []int{codeProtocol}, dropOK: true},
		confRow{name: "1.x unmasked frame after a good one", writes: []confWrite{sendFrames(textFrame("Hello"), wstest.Frame{Fin: true, Op: wstest.OpBinary, Unmasked: true, Payload: []byte("x")})}, alts: [][]confEvent{{textMsg("Hello")}}, end: endClose, codes: []int{codeProtocol}, dropOK: true},
		confRow{name: "1.x 64-bit length with the top bit set", writes: []confWrite{sendRaw([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0x37, 0xFA, 0x21, 0x3D})}, end: endClose, codes: []int{codeProtocol}, dropOK: true},
	)

	// Frames in the same TCP write as the handshake request: the server
	// must keep the bytes it read past the request head.
	early := func(name string, want []confEvent, frames ...wstest.Frame) confRow {
		return confRow{name: name, early: true, writes: []confWrite{sendFrames(frames...)}, want: want}
	}
	bulk := pattern(20000, false)
	rows = append(rows,
		early("1.x text in the handshake's write", []confEvent{textMsg("Hello")}, textFrame("Hello")),
		early("1.x 20000-byte binary in the handshake's write", []confEvent{binaryMsg(bulk)}, binaryFrame(bulk)),
		early("1.x ping and fragments in the handshake's write", []confEvent{pongMsg("early"), textMsg("fragment1fragment2")},
			frag(wstest.OpText, false, "fragment1"), pingFrame("early"), frag(wstest.OpContinuation, true, "fragment2")),
	)
	closeEarly := early("1.x close in the handshake's write", nil, closeFrame(3003, "early"))
	closeEarly.end, closeEarly.codes = endClose, []int{3003}
	rows = append(rows, closeEarly)

	// 1,000 small messages pipelined in one write.
	var frames []wstest.Frame
	var want []confEvent
	for i := range 1000 {
		p := []byte(fmt.Sprintf("msg%05d", i))
		frames = append(frames, binaryFrame(p))
		want = append(want, binaryMsg(p))
	}
	rows = append(rows, confRow{name: "1.x 1000 8-byte messages in one write", writes: []confWrite{sendFrames(frames...)}, want: want})

	// A header cut in two at every byte, each half its own write.
	for _, n := range []int{100, 300, 65536 + 10} {
		var ws []confWrite
		var want []confEvent
		p := pattern(n, false)
		hdr := len(wstest.AppendFrame(nil, binaryFrame(p))) - n
		for k := 1; k < hdr; k++ {
			f := wstest.AppendFrame(nil, binaryFrame(p))
			ws = append(ws, sendRaw(f[:k]), sendRaw(f[k:]).after(3*time.Millisecond))
			want = append(want, binaryMsg(p))
		}
		rows = append(rows, confRow{name: fmt.Sprintf("1.x %d-byte header split at every byte", hdr), writes: ws, want: want})
	}
	return rows
}

// Group 2: pings and pongs.
func pingRows() []confRow {
	bin := string([]byte{0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF})
	p125 := string(bytes.Repeat([]byte{0xFE}, 125))
	var tenPings []wstest.Frame
	var tenPongs []confEvent
	for i := range 10 {
		p := fmt.Sprintf("payload-%d", i)
		tenPings = append(tenPings, pingFrame(p))
		tenPongs = append(tenPongs, pongMsg(p))
	}
	// A ping header cut at every byte.
	var split []confWrite
	var splitPongs []confEvent
	for k := 1; k < 6; k++ {
		f := wstest.AppendFrame(nil, pingFrame("split "+strconv.Itoa(k)))
		split = append(split, sendRaw(f[:k]), sendRaw(f[k:]).after(3*time.Millisecond))
		splitPongs = append(splitPongs, pongMsg("split "+strconv.Itoa(k)))
	}
	return []confRow{
		{name: "2.1 ping without payload", writes: []confWrite{sendFrames(pingFrame(""))}, want: []confEvent{pongMsg("")}},
		{name: "2.2 ping with small text payload", writes: []confWrite{sendFrames(pingFrame("Hello, world!"))}, want: []confEvent{pongMsg("Hello, world!")}},
		{name: "2.3 ping with small binary payload", writes: []confWrite{sendFrames(pingFrame(bin))}, want: []confEvent{pongMsg(bin)}},
		{name: "2.4 ping with 125-byte payload", writes: []confWrite{sendFrames(pingFrame(p125))}, want: []confEvent{pongMsg(p125)}},
		{name: "2.5 ping with 126-byte payload fails", writes: []confWrite{sendFrames(pingFrame(p125 + "x"))}, end: endClose, codes: []int{codeProtocol}, dropOK: true},
		{name: "2.6 ping with 125-byte payload in 1-byte chops", writes: []confWrite{sendFrames(pingFrame(p125)).chopped(1)}, want: []confEvent{pongMsg(p125)}},
		{name: "2.7 unsolicited pong without payload", writes: []confWrite{sendFrames(pongFrame(""))}},
		{name: "2.8 unsolicited pong with payload", writes: []confWrite{sendFrames(pongFrame("unsolicited pong payload"))}},
		{name: "2.9 unsolicited pong then ping", writes: []confWrite{sendFrames(pongFrame("unsolicited pong payload"), pingFrame("ping payload"))}, want: []confEvent{pongMsg("ping payload")}},
		{name: "2.10 10 pings", writes: []confWrite{sendFrames(tenPings...)}, want: tenPongs},
		{name: "2.11 10 pings in 1-byte chops", writes: []confWrite{sendFrames(tenPings...).chopped(1)}, want: tenPongs},
		{name: "2.x ping header split at every byte", writes: split, want: splitPongs},
	}
}

// Group 3: reserved bits. What came before the bad frame may or may not be
// echoed before the close (NON-STRICT in Autobahn): the echo comes from
// another process, and the failing close goes out at once.
func rsvRows() []confRow {
	hello := textFrame("Hello, world!")
	withRSV := func(f wstest.Frame, rsv byte) wstest.Frame { f.RSV = rsv; return f }
	echoed := []confEvent{textMsg("Hello, world!")}
	fail := func(name string, ws []confWrite, want []confEvent) confRow {
		row := confRow{name: name, writes: ws, want: want, end: endClose, codes: []int{codeProtocol}, dropOK: true}
		if len(want) > 0 {
			row.alts = [][]confEvent{nil}
		}
		return row
	}
	return []confRow{
		fail("3.1 text with RSV 1", []confWrite{sendFrames(withRSV(hello, 1))}, nil),
		fail("3.2 text, text with RSV 2, ping", []confWrite{sendFrames(hello, withRSV(hello, 2), pingFrame(""))}, echoed),
		fail("3.3 text, text with RSV 3, ping, frame-wise", frameWise(hello, withRSV(hello, 3), pingFrame("")), echoed),
		fail("3.4 text, text with RSV 4, ping, 1-byte chops", []confWrite{sendFrames(hello).chopped(1), sendFrames(withRSV(hello, 4)).chopped(1), sendFrames(pingFrame("")).chopped(1)}, echoed),
		fail("3.5 binary with RSV 5", []confWrite{sendFrames(withRSV(binaryFrame([]byte{0, 0xFF, 0xFE, 0xFD}), 5))}, nil),
		fail("3.6 ping with RSV 6", []confWrite{sendFrames(withRSV(pingFrame("Hello, world!"), 6))}, nil),
		fail("3.7 close with RSV 7", []confWrite{sendFrames(withRSV(closeFrame(codeNormal, ""), 7))}, nil),
		fail("3.x continuation with RSV 1", []confWrite{sendFrames(frag(wstest.OpText, false, "frag"), withRSV(frag(wstest.OpContinuation, true, "ment"), 1))}, nil),
	}
}

// Group 4: reserved opcodes.
func opcodeRows() []confRow {
	var rows []confRow
	for i, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		name := fmt.Sprintf("4.%d.%d opcode %d", 1+i/5, 1+i%5, op)
		reserved := wstest.Frame{Fin: true, Op: op}
		if i%5 == 1 || i%5 >= 3 {
			reserved.Payload = []byte("reserved opcode payload")
			name += " with payload"
		}
		row := confRow{name: name, writes: []confWrite{sendFrames(reserved)}, end: endClose, codes: []int{codeProtocol}, dropOK: true}
		if i%5 >= 2 {
			// Text first and a ping after: echo maybe (NON-STRICT), no pong.
			row.name = fmt.Sprintf("4.%d.%d text, opcode %d, ping", 1+i/5, 1+i%5, op)
			row.writes = []confWrite{sendFrames(textFrame("Hello, world!"), reserved, pingFrame(""))}
			row.want = []confEvent{textMsg("Hello, world!")}
			row.alts = [][]confEvent{nil}
		}
		rows = append(rows, row)
	}
	return rows
}

// Group 5: fragmentation.
func fragmentRows() []confRow {
	f1, f2 := frag(wstest.OpText, false, "fragment1"), frag(wstest.OpContinuation, true, "fragment2")
	joined := []confEvent{textMsg("fragment1fragment2")}
	ping := pingFrame("ping payload")
	pingThen := []confEvent{pongMsg("ping payload"), textMsg("fragment1fragment2")}
	protocol := func(row confRow) confRow {
		row.end, row.codes, row.dropOK = endClose, []int{codeProtocol}, true
		return row
	}
	bare := func(fin bool) []wstest.Frame {
		return []wstest.Frame{frag(wstest.OpContinuation, fin, "non-continuation payload"), textFrame("Hello, world!")}
	}
	frags := func(n int) []wstest.Frame {
		fs := make([]wstest.Frame, n)
		for i := range fs {
			fs[i] = frag(wstest.OpContinuation, false, fmt.Sprintf("fragment%d", i+1))
		}
		fs[0].Op = wstest.OpText
		fs[n-1].Fin = true
		return fs
	}
	twice := func(fs ...wstest.Frame) []wstest.Frame { return append(fs, fs...) }
	// 5.19 and 5.20: two pings inside a five-fragment message, with a wait;
	// the first pong must come during the wait.
	f := frags(5)
	p1, p2 := pingFrame("pongme 1!"), pingFrame("pongme 2!")
	want519 := []confEvent{pongMsg("pongme 1!"), pongMsg("pongme 2!"), textMsg("fragment1fragment2fragment3fragment4fragment5")}
	part2 := sendFrames(f[2], f[3], p2, f[4]).after(300 * time.Millisecond)
	part2.await = 1
	sync2 := frameWise(f[2], f[3], p2, f[4])
	sync2[0].pause, sync2[0].await = 300*time.Millisecond, 1
	return []confRow{
		protocol(confRow{name: "5.1 ping in 2 fragments", writes: []confWrite{sendFrames(frag(wstest.OpPing, false, "fragment1"), frag(wstest.OpContinuation, true, "fragment2"))}}),
		protocol(confRow{name: "5.2 pong in 2 fragments", writes: []confWrite{sendFrames(frag(wstest.OpPong, false, "fragment1"), frag(wstest.OpContinuation, true, "fragment2"))}}),
		{name: "5.3 text in 2 fragments", writes: []confWrite{sendFrames(f1, f2)}, want: joined},
		{name: "5.4 text in 2 fragments, frame-wise", writes: frameWise(f1, f2), want: joined},
		{name: "5.5 text in 2 fragments, 1-byte chops", writes: []confWrite{sendFrames(f1, f2).chopped(1)}, want: joined},
		{name: "5.6 text in 2 fragments with a ping between", writes: []confWrite{sendFrames(f1, ping, f2)}, want: pingThen},
		{name: "5.7 text in 2 fragments with a ping between, frame-wise", writes: frameWise(f1, ping, f2), want: pingThen},
		{name: "5.8 text in 2 fragments with a ping between, 1-byte chops", writes: []confWrite{sendFrames(f1, ping, f2).chopped(1)}, want: pingThen},
		protocol(confRow{name: "5.9 continuation fin=1 with nothing to continue, then text", writes: []confWrite{sendFrames(bare(true)...)}}),
		protocol(confRow{name: "5.10 continuation fin=1 with nothing to continue, frame-wise", writes: frameWise(bare(true)...)}),
		protocol(confRow{name: "5.11 continuation fin=1 with nothing to continue, 1-byte chops", writes: []confWrite{sendFrames(bare(true)...).chopped(1)}}),
		protocol(confRow{name: "5.12 continuation fin=0 with nothing to continue, then text", writes: []confWrite{sendFrames(bare(false)...)}}),
		protocol(confRow{name: "5.13 continuation fin=0 with nothing to continue, frame-wise", writes: frameWise(bare(false)...)}),
		protocol(confRow{name: "5.14 continuation fin=0 with nothing to continue, 1-byte chops", writes: []confWrite{sendFrames(bare(false)...).chopped(1)}}),
		protocol(confRow{name: "5.15 text in 2 fragments, then continuation with nothing to continue",
			writes: []confWrite{sendFrames(f1, f2, frag(wstest.OpContinuation, false, "fragment3"), textFrame("fragment4"))}, want: joined, alts: [][]confEvent{nil}}),
		protocol(confRow{name: "5.16 twice: continuation fin=0, text fin=0, text fin=1",
			writes: []confWrite{sendFrames(twice(frag(wstest.OpContinuation, false, "fragment1"), frag(wstest.OpText, false, "fragment2"), frag(wstest.OpText, true, "fragment3"))...)}}),
		protocol(confRow{name: "5.17 twice: continuation fin=1, text fin=0, text fin=1",
			writes: []confWrite{sendFrames(twice(frag(wstest.OpContinuation, true, "fragment1"), frag(wstest.OpText, false, "fragment2"), frag(wstest.OpText, true, "fragment3"))...)}}),
		protocol(confRow{name: "5.18 text fin=0 then text fin=1", writes: []confWrite{sendFrames(frag(wstest.OpText, false, "fragment1"), frag(wstest.OpText, true, "fragment2"))}}),
		{name: "5.19 5 fragments, 2 pings, a wait", writes: []confWrite{sendFrames(f[0], f[1], p1), part2}, want: want519},
		{name: "5.20 5 fragments, 2 pings, a wait, frame-wise", writes: append(frameWise(f[0], f[1], p1), sync2...), want: want519},
		protocol(confRow{name: "5.x binary fin=0 then binary fin=1", writes: []confWrite{sendFrames(wstest.Frame{Op: wstest.OpBinary, Payload: []byte{1}}, binaryFrame([]byte{2}))}}),
	}
}

// kosme is κόσμε, the multi-byte text of Autobahn's UTF-8 cases.
