package examples

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/framing"
)

// record is one mux record, whole.
type record struct {
	Kind framing.Kind
	Conn uint32
	Data string
}

func (r record) String() string { return fmt.Sprintf("%s #%d %q", r.Kind, r.Conn, r.Data) }

func text(conn uint32, s string) record { return record{framing.Text, conn, s} }

func closing(conn uint32, code uint16, reason string) record {
	return record{framing.Close, conn, string(framing.AppendMuxClose(nil, code, reason))}
}

// muxChild is a shared child run over pipes, the test playing wsbridge
// with the mux framing. Records go both ways through package framing's
// encoder and decoder, so the child is held to what the bridge accepts:
// a close code not valid on the wire fails the test.
type muxChild struct {
	*lineChild
	dec  framing.Decoder
	buf  []byte
	have int
	eof  bool
	cur  []byte   // the record being assembled from pieces
	got  []record // decoded, not yet returned
}

func startMuxChild(t *testing.T, argv ...string) *muxChild {
	t.Helper()
	return &muxChild{lineChild: startLineChild(t, argv...), dec: framing.NewMuxDecoder(), buf: make([]byte, 4096)}
}

// send writes one record to the child's stdin.
func (m *muxChild) send(t *testing.T, k framing.Kind, conn uint32, data []byte) {
	t.Helper()
	rec := append(framing.AppendMuxHeader(nil, k, conn, len(data)), data...)
	m.stdin.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := m.stdin.Write(rec); err != nil {
		t.Fatalf("writing a %s record: %v (stderr %q)", k, err, m.stderr.String())
	}
}

func (m *muxChild) open(t *testing.T, conn uint32, env ...string) {
	t.Helper()
	m.send(t, framing.Open, conn, framing.AppendMuxEnv(nil, env))
}

func (m *muxChild) say(t *testing.T, conn uint32, s string) {
	t.Helper()
	m.send(t, framing.Text, conn, []byte(s))
}

func (m *muxChild) left(t *testing.T, conn uint32, code uint16) {
	t.Helper()
	m.send(t, framing.Close, conn, framing.AppendMuxClose(nil, code, ""))
}

// next returns the child's next record, failing if none comes in time or
// if the child writes anything the bridge would reject.
func (m *muxChild) next(t *testing.T) record {
	t.Helper()
	dst := make([]framing.Piece, 0, 16)
	for len(m.got) == 0 {
		pieces, n, err := m.dec.Decode(dst, m.buf[:m.have], m.have == len(m.buf), m.eof)
		for _, p := range pieces {
			m.cur = append(m.cur, p.Data...)
			if p.Final {
				m.got = append(m.got, record{p.Kind, p.Conn, string(m.cur)})
				m.cur = m.cur[:0]
			}
		}
		if err != nil {
			t.Fatalf("the child wrote what the bridge would reject: %v (stderr %q)", err, m.stderr.String())
		}
		m.have = copy(m.buf, m.buf[n:m.have])
		if len(m.got) > 0 || n > 0 {
			continue
		}
		if m.eof {
			t.Fatalf("the child's stdout ended, no record came (stderr %q)", m.stderr.String())
		}
		m.stdout.SetReadDeadline(time.Now().Add(ioTimeout))
		r, err := m.out.Read(m.buf[m.have:])
		m.have += r
		switch {
		case errors.Is(err, io.EOF):
			m.eof = true
		case err != nil:
			t.Fatalf("waiting for a record: %v (stderr %q)", err, m.stderr.String())
		}
	}
	r := m.got[0]
	m.got = m.got[1:]
	return r
}

func (m *muxChild) expect(t *testing.T, want ...record) {
	t.Helper()
	for _, w := range want {
		if got := m.next(t); got != w {
			t.Fatalf("got record %v, want %v", got, w)
		}
	}
}

// finish ends stdin, as wsbridge stops a shared child, and checks the
// child wrote nothing more and exited 0.
func (m *muxChild) finish(t *testing.T) {
	t.Helper()
	if rest := m.lineChild.finish(t); rest != "" || m.have > 0 || len(m.got) > 0 {
		t.Fatalf("after stdin ended got %q more (and %d records), want nothing", rest, len(m.got))
	}
}

func TestMuxChat(t *testing.T) {
	bin := buildC(t, "mux-chat")
	ann := []string{"GATEWAY_INTERFACE=CGI/1.1", "REMOTE_ADDR=10.0.0.1",
		"QUERY_STRINGX=nick=decoy", "HTTP_REFERER=http://h/?QUERY_STRING=nick=decoy",
		"QUERY_STRING=room=1&nick=ann&x", "REMOTE_PORT=5000"}
	guest := []string{"REMOTE_ADDR=10.0.0.2", "QUERY_STRING="}

	t.Run("a conversation", func(t *testing.T) {
		m := startMuxChild(t, bin)
		m.open(t, 1, ann...)
		m.expect(t, text(1, "welcome ann, 1 online"), text(0, "* ann joined"))
		m.open(t, 2, guest...)
		m.expect(t, text(2, "welcome guest2, 2 online"), text(0, "* guest2 joined"))
		m.say(t, 1, "hi all\nhow are you? ✓")
		m.expect(t, text(0, "ann: hi all\nhow are you? ✓"))
		m.say(t, 2, "")
		m.expect(t, text(0, "guest2: "))
		m.say(t, 2, "/who")
		m.expect(t, text(2, "online (2): ann, guest2"))
		m.say(t, 1, "/who is here") // not the command: said aloud
		m.expect(t, text(0, "ann: /who is here"))
		m.left(t, 2, 1001)
		m.expect(t, text(0, "* guest2 left"))
		m.say(t, 1, "/who")
		m.expect(t, text(1, "online (1): ann"))
		m.finish(t)
		for _, want := range []string{"mux-chat: ann (connection 1) joined from 10.0.0.1\n",
			"mux-chat: guest2 (connection 2) joined from 10.0.0.2\n", "mux-chat: guest2 (connection 2) left, code 1001\n"} {
			if !strings.Contains(m.stderr.String(), want) {
				t.Errorf("stderr %q lacks %q", m.stderr.String(), want)
			}
		}
	})

	t.Run("the chat closes clients", func(t *testing.T) {
		m := startMuxChild(t, bin)
		m.open(t, 1, ann...)
		m.expect(t, text(1, "welcome ann, 1 online"), text(0, "* ann joined"))
		m.open(t, 2, "QUERY_STRING=nick=ANN")
		m.expect(t, closing(2, 4001, "nick taken"))
		m.open(t, 3, "QUERY_STRING=nick=a%20b")
		m.expect(t, closing(3, 4002, "bad nick: use 1 to 32 letters, digits, _ - ."))
		m.open(t, 4, "QUERY_STRING=nick="+strings.Repeat("x", 33))
		m.expect(t, closing(4, 4002, "bad nick: use 1 to 32 letters, digits, _ - ."))
		m.open(t, 5, "QUERY_STRING=nick=guest6")
		m.expect(t, text(5, "welcome guest6, 2 online"), text(0, "* guest6 joined"))
		m.open(t, 6) // no QUERY_STRING at all; guest6 is taken
		m.expect(t, text(6, "welcome guest6_, 3 online"), text(0, "* guest6_ joined"))

		m.say(t, 5, "/quit")
		m.expect(t, closing(5, 1000, "bye"), text(0, "* guest6 left"))
		m.send(t, framing.Binary, 6, []byte{0, 1, 2})
		m.expect(t, closing(6, 1003, "text only"), text(0, "* guest6_ left"))
		// Records for the clients it closed cross its closes: no answer.
		m.say(t, 5, "still here?")
		m.left(t, 5, 1000)
		m.left(t, 2, 4001)
		m.say(t, 99, "never opened")
		m.say(t, 1, "/who")
		m.expect(t, text(1, "online (1): ann"))

		big := strings.Repeat("é", 32<<10) // 64 KiB: the longest message
		m.say(t, 1, big)
		m.expect(t, text(0, "ann: "+big))
		m.say(t, 1, big+"!")
		m.expect(t, closing(1, 1009, "message over 64 KiB"), text(0, "* ann left"))
		m.finish(t)
	})

	t.Run("a full room", func(t *testing.T) {
		m := startMuxChild(t, bin)
		// The longest nicks: 4096 of them do not fit in one /who answer.
		nick := func(conn uint32) string { return fmt.Sprintf("%s%04d", strings.Repeat("n", 28), conn) }
		for conn := uint32(1); conn <= 4096; conn++ {
			m.open(t, conn, "QUERY_STRING=nick="+nick(conn))
			m.expect(t, text(conn, fmt.Sprintf("welcome %s, %d online", nick(conn), conn)), text(0, "* "+nick(conn)+" joined"))
		}
		m.open(t, 4097)
		m.expect(t, closing(4097, 1013, "the room is full, try again later"))
		m.left(t, 17, 1006)
		m.expect(t, text(0, "* "+nick(17)+" left"))
		m.open(t, 4098)
		m.expect(t, text(4098, "welcome guest4098, 4096 online"), text(0, "* guest4098 joined"))
		m.say(t, 4098, "/who")
		who := m.next(t)
		// In the order they joined, as many as fit in 64 KiB, then "...".
		if want := "online (4096): " + nick(1) + ", " + nick(2) + ", "; who.Conn != 4098 || !strings.HasPrefix(who.Data, want) ||
			!strings.Contains(who.Data, nick(16)+", "+nick(18)+", ") || !regexp.MustCompile(`, n{28}\d{4} \.\.\.$`).MatchString(who.Data) ||
			len(who.Data) < 60<<10 || len(who.Data) > 64<<10+40 {
			t.Fatalf("/who in a full room: %.80v ... %s (%d bytes)", who, who.Data[max(0, len(who.Data)-40):], len(who.Data))
		}
		m.finish(t)
	})

	t.Run("input that is not mux records", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			input []byte
		}{
			{"reserved bits set", []byte("\x02\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00")},
			{"ends inside a header", []byte("\x02\x00\x00\x00\x00\x00")},
			{"ends inside a payload", append(framing.AppendMuxHeader(nil, framing.Text, 1, 10), "short"...)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, errOut, code := runChild(t, tc.input, bin)
				if code != 1 || len(out) != 0 || !bytes.Contains(errOut, []byte("mux-chat: stdin is not mux records, or ended inside one")) {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1, nothing, the reason", code, out, errOut)
				}
			})
		}
	})
}
