package bridge

// The rows of TestConformance's groups 7, 9 and 10.

import (
	"fmt"
	"os"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

// Group 7: close handling.
func closeRows() []confRow {
	closing := func(name string, codes []int, frames ...wstest.Frame) confRow {
		return confRow{name: name, writes: []confWrite{sendFrames(frames...)}, end: endClose, codes: codes}
	}
	normal := []int{codeNormal}
	protocol := []int{codeProtocol}
	big := pattern(256<<10, true)
	rows := []confRow{
		{name: "7.1.1 message, then close", writes: []confWrite{sendFrames(textFrame("Hello World!"))}, want: []confEvent{textMsg("Hello World!")}},
		closing("7.1.2 two close frames", normal, closeFrame(codeNormal, ""), wstest.Frame{Fin: true, Op: wstest.OpClose}),
		closing("7.1.3 ping after close", normal, closeFrame(codeNormal, ""), pingFrame("")),
		closing("7.1.4 text after close", normal, closeFrame(codeNormal, ""), textFrame("Hello World!")),
		closing("7.1.5 fragment, close, fragment", normal, frag(wstest.OpText, false, "fragment1"), closeFrame(codeNormal, ""), frag(wstest.OpContinuation, true, "fragment2")),
		{
			// INFORMATIONAL: the echo may lose the race with the close.
			name:   "7.1.6 256K message, message, close, ping",
			writes: []confWrite{sendFrames(textFrame(string(big)), textFrame("Hello World!"), closeFrame(codeNormal, ""), pingFrame(""))},
			want:   []confEvent{textMsg(string(big)), textMsg("Hello World!")},
			alts:   [][]confEvent{nil, {textMsg(string(big))}},
			end:    endClose, codes: normal,
		},
		closing("7.3.1 close with no payload", []int{noStatus}, wstest.Frame{Fin: true, Op: wstest.OpClose}),
		closing("7.3.2 close with a 1-byte payload", protocol, wstest.Frame{Fin: true, Op: wstest.OpClose, Payload: []byte{0x03}}),
		closing("7.3.3 close 1000 without reason", normal, closeFrame(codeNormal, "")),
		closing("7.3.4 close 1000 with a reason", normal, closeFrame(codeNormal, "Hello World!")),
		closing("7.3.5 close with a 123-byte reason", normal, closeFrame(codeNormal, stars(123))),
		closing("7.3.6 close with a 124-byte reason", protocol, closeFrame(codeNormal, stars(124))),
		closing("7.5.1 close reason not UTF-8", []int{codeProtocol, codeBadData}, closeFrame(codeNormal, kosme+"\xed\xa0\x80edited")),
		closing("7.13.1 close code 5000", protocol, closeFrame(5000, "")),
		closing("7.13.2 close code 65535", protocol, closeFrame(65535, "")),
		closing("7.x close code 1015 (TLS failure, never sent)", protocol, closeFrame(1015, "")),
	}
	rows = append(rows, closing("7.x close inside a text message cut mid code point", normal, frag(wstest.OpText, false, "\xe2\x82"), closeFrame(codeNormal, "")))
	chopped := closing("7.x close 1000 in 1-byte chops", normal, closeFrame(codeNormal, "bye"))
	chopped.writes[0] = chopped.writes[0].chopped(1)
	rows = append(rows, chopped)
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		rows = append(rows, closing(fmt.Sprintf("7.7.%d close code %d echoed", i+1, code), []int{code}, closeFrame(code, "")))
	}
	for _, code := range []int{1012, 1013, 1014} {
		// Registered with IANA after RFC 6455; the bridge accepts them.
		rows = append(rows, closing(fmt.Sprintf("7.x close code %d echoed", code), []int{code}, closeFrame(code, "")))
	}
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999} {
		row := closing(fmt.Sprintf("7.9.%d invalid close code %d", i+1, code), protocol, closeFrame(code, ""))
		row.dropOK = true
		rows = append(rows, row)
	}
	return rows
}

// Group 9: limits and performance, bounded: sizes above 1 MiB run only
// without -short. Rows here run one at a time.
func limitRows() []confRow {
	var rows []confRow
	// echoRow makes a row that sends an n-byte message as write says and
	// wants it back. The payload is made when the row runs.
	echoRow := func(name string, text bool, n int, write func(op byte, p []byte) confWrite) confRow {
		return confRow{name: name, serial: true, long: n > 1<<20, limit: time.Minute, build: func(row *confRow) {
			p := pattern(n, text)
			op, ev := wstest.OpBinary, binaryMsg(p)
			if text {
				op, ev = wstest.OpText, textMsg(string(p))
			}
			row.writes, row.want = []confWrite{write(op, p)}, []confEvent{ev}
		}}
	}
	whole := func(op byte, p []byte) confWrite { return sendFrames(wstest.Frame{Fin: true, Op: op, Payload: p}) }
	inFragments := func(size int) func(op byte, p []byte) confWrite {
		return func(op byte, p []byte) confWrite { return sendFrames(wstest.Fragments(op, p, size)...) }
	}
	kind := map[bool]string{true: "text", false: "binary"}
	for sub, text := range []bool{true, false} {
		for i, n := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20} {
			rows = append(rows, echoRow(fmt.Sprintf("9.%d.%d %s %s", 1+sub, i+1, kind[text], sizeName(n)), text, n, whole))
		}
	}
	for sub, text := range []bool{true, false} {
		for i, fs := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			rows = append(rows, echoRow(fmt.Sprintf("9.%d.%d %s 4 MiB in %s fragments", 3+sub, i+1, kind[text], sizeName(fs)), text, 4<<20, inFragments(fs)))
		}
		// The same at 1 MiB, so -short covers fragmented messages too.
		rows = append(rows, echoRow(fmt.Sprintf("9.%d.x %s 1 MiB in 64 B fragments", 3+sub, kind[text]), text, 1<<20, inFragments(64)))
	}
	for sub, text := range []bool{true, false} {
		for i, chop := range []int{64, 128, 256, 512, 1024, 2048} {
			rows = append(rows, echoRow(fmt.Sprintf("9.%d.%d %s 1 MiB in %d-byte chops", 5+sub, i+1, kind[text], chop), text, 1<<20,
				func(op byte, p []byte) confWrite { return whole(op, p).chopped(chop) }))
		}
	}
	for sub, text := range []bool{true, false} {
		for i, n := range []int{0, 16, 64, 256, 1024, 4096} {
			row := echoRow(fmt.Sprintf("9.%d.%d 1000 %s round trips of %d bytes", 7+sub, i+1, kind[text], n), text, n, whole)
			row.rounds = 1000
			rows = append(rows, row)
		}
	}

	// --max-message: 1009 as soon as a header shows the message is too long.
	tooBig := func(name string, ws ...confWrite) confRow {
		return confRow{name: name, bridge: bridgeLimited, writes: ws, end: endClose, codes: []int{codeTooBig}}
	}
	half := pattern(limitedMax/2, false)
	rows = append(rows,
		confRow{name: "9.x limit: a message of exactly --max-message", bridge: bridgeLimited,
			writes: []confWrite{sendFrames(binaryFrame(pattern(limitedMax, false)))}, want: []confEvent{binaryMsg(pattern(limitedMax, false))}},
		tooBig("9.x limit: one byte over, payload never sent", sendFrames(wstest.Frame{Fin: true, Op: wstest.OpText, Length: limitedMax + 1})),
		tooBig("9.x limit: 1 GiB announced", sendFrames(wstest.Frame{Fin: true, Op: wstest.OpBinary, Length: 1 << 30, Payload: half})),
		tooBig("9.x limit: 3 fragments of half the limit", sendFrames(wstest.Frame{Op: wstest.OpBinary, Payload: half}, wstest.Frame{Op: wstest.OpContinuation, Payload: half}, wstest.Frame{Op: wstest.OpContinuation, Fin: true, Payload: half})),
		confRow{name: "9.x 1 GiB announced, not sent: no allocation", bridge: bridgeOwn, serial: true, // it measures the process
			writes: []confWrite{sendFrames(wstest.Frame{Fin: true, Op: wstest.OpBinary, Length: 1 << 30, Payload: pattern(64<<10, false)})},
			end:    endDrop, check: checkMemory},
	)
	return rows
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// checkMemory fails if the server holds anything like the 1 GiB a client
// announced: what it allocates must stay small, and the address space
// must not grow by the message (a large allocation maps memory even
// before it is touched).
func checkMemory(t *testing.T, b *confBridge) func() {
	// In-process, the server's memory is the test process's: its peak
	// resident set is that of every test before, so what the server
	// allocates is read from the runtime instead. The row runs alone
	// (serial), so what is allocated meanwhile is the server's.
	pid := os.Getpid()
	vmBefore, allocsBefore := proctest.StatusKB(t, pid, "VmSize"), heapAllocs()
	return func() {
		time.Sleep(300 * time.Millisecond) // let the server read what came
		allocs := (heapAllocs() - allocsBefore) >> 10
		vmAfter := proctest.StatusKB(t, pid, "VmSize")
		t.Logf("allocated %d KiB, VmSize %d -> %d KiB", allocs, vmBefore, vmAfter)
		if allocs > 64<<10 {
			t.Errorf("the server allocated %d KiB while a 1 GiB frame is announced: it buffers the message", allocs)
		}
		if grown := vmAfter - vmBefore; grown > 256<<10 {
			t.Errorf("address space grew by %d KiB while a 1 GiB frame is announced", grown)
		}
	}
}

// heapAllocs is the bytes the process has allocated on the heap so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Group 10: auto-fragmentation. Autobahn's 10.1.1 sends a 64 KiB text
// message in 1300-byte frames; rows of our own try other sizes.
func autoFragmentRows() []confRow {
	p := stars(65536)
	var rows []confRow
	for _, n := range []int{1300, 1, 7, 125, 126, 127, 4096, 65535} {
		name := fmt.Sprintf("10.1.x text 64 KiB in %d-byte fragments", n)
		if n == 1300 {
			name = "10.1.1 text 64 KiB in 1300-byte fragments"
		}
		rows = append(rows, confRow{name: name, writes: []confWrite{sendFrames(wstest.Fragments(wstest.OpText, []byte(p), n)...)}, want: []confEvent{textMsg(p)}})
	}
	return rows
}
