package bridge

// TestConformance checks the bridge against RFC 6455 with a table of
// rows written from the case descriptions of the Autobahn testsuite's
// fuzzing client (groups 1-7, 9 and 10; a row named "6.4.2 ..." is
// Autobahn's case 6.4.2), plus rows of our own named "N.x ...". The
// server runs testchild cat with len32 framing, a faithful echo: every
// message comes back whole and of the same kind, though maybe fragmented
// differently, so rows compare reassembled messages, never frames. The
// rows are in conformance_frames_test.go (groups 1-5),
// conformance_utf8_test.go (6) and conformance_limits_test.go (7, 9, 10).
//
// Every row ends with a close frame carrying the expected code followed
// by an orderly TCP close (FIN, not a reset) within a deadline; where
// Autobahn also accepts a dropped connection the row says so. A row
// that Autobahn grades NON-STRICT or INFORMATIONAL lists the outcomes it
// accepts besides the strict one and logs which it saw.
//
// The real suite cannot run here: its fuzzing client is the Python
// package autobahntestsuite, which Debian does not ship, and neither PyPI
// nor Docker Hub is reachable.

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// Close codes the rows expect. noStatus stands for a close frame with no
// payload, as RFC 6455 7.1.5 reads it.
const (
	codeNormal   = 1000
	codeProtocol = 1002
	codeBadData  = 1007
	codeTooBig   = 1009
	noStatus     = 1005
)

// Which bridge a row talks to.
const (
	bridgeEcho    = iota // --max-message=0: no limit
	bridgeLimited        // --max-message=64KiB
	bridgeOwn            // one of its own, for rows that measure the process
)

const limitedMax = 64 << 10

// How a row ends.
type confEnd uint8

const (
	// endEcho: once the wanted events are in, the client sends close 1000
	// and the server must answer with 1000 (Autobahn's closedByMe).
	endEcho confEnd = iota
	// endClose: the server must send a close with one of the row's codes,
	// failing the connection or answering a close among the writes.
	endClose
	// endDrop: the client drops TCP mid-message and the bridge must end
	// the session.
	endDrop
)

// confRow is one row of the table.
type confRow struct {
	name   string
	bridge int
	writes []confWrite   // what the client sends, in order
	rounds int           // >0: send writes and await want, rounds times (round-trip rows)
	want   []confEvent   // what must come back, in order, before the server's close
	alts   [][]confEvent // other outcomes Autobahn accepts (NON-STRICT, INFORMATIONAL)
	end    confEnd
	codes  []int // endClose: the close codes accepted from the server
	dropOK bool  // endClose: a TCP close with no close frame is also accepted
	early  bool  // the first write goes out with the handshake request, in one TCP write
	long   bool  // skipped with -short
	serial bool  // not run in parallel: heavy on CPU and memory
	limit  time.Duration
	// check, when set, runs before the writes; what it returns runs after
	// them, before the end.
	check func(t *testing.T, b *confBridge) func()
	// build, when set, fills the row in when it runs: big payloads are
	// made only for rows that run.
	build func(row *confRow)
}

// confWrite is one step of what a row sends.
type confWrite struct {
	data   []byte
	closes bool          // data holds a close frame
	chop   int           // write in pieces of this many bytes; 0: one write
	pause  time.Duration // sleep before this step
	open   time.Duration // before this step, the connection must stay open this long
	await  int           // before this step, wait for this many events
}

// confRun follows one row's connection: the events so far, and whether
// the server closed.
type confRun struct {
	t      *testing.T
	events <-chan confEvent
	got    []confEvent // messages and control frames, in order
	closed *confEvent  // the server's close frame
	ended  *confEvent  // the end of the connection
}

// wait takes events until cond holds, the connection ends, or timeout
// passes; it reports whether cond holds.
func (r *confRun) wait(cond func() bool, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for !cond() {
		if r.ended != nil {
			return false
		}
		select {
		case ev, ok := <-r.events:
			if !ok {
				return cond()
			}
			r.take(ev)
		case <-timer.C:
			return cond()
		}
	}
	return true
}

func (r *confRun) take(ev confEvent) {
	switch ev.kind {
	case evClose:
		r.closed = &ev
	case evEnd:
		r.ended = &ev
	case evBad:
		r.t.Errorf("server broke RFC 6455: %v", ev.err)
		r.ended = &ev
	default:
		r.got = append(r.got, ev)
	}
}

func (r *confRun) over() bool { return r.closed != nil || r.ended != nil }

func (row confRow) run(t *testing.T, b *confBridge) {
	limit := row.limit
	if limit == 0 {
		limit = 20 * time.Second
	}
	var c *wstest.Conn
	writes := row.writes
	if row.early {
		c = wstest.MustDialTCP(t, b.Addr, wstest.Options{})
		req, key := wstest.UpgradeRequest(b.Addr, "/")
		resp, err := c.Request(req+string(writes[0].data), key)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("handshake with a frame behind it: %v %v", resp, err)
		}
		writes = writes[1:]
	} else {
		c = wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
	}
	events := make(chan confEvent, 1024)
	go readEvents(c, time.Now().Add(limit), events)
	defer func() {
		// Stop the reader and wait for it.
		c.Conn.Close()
		for range events {
		}
	}()
	r := &confRun{t: t, events: events}
	want := row.want
	rounds := max(row.rounds, 1)
	if row.rounds > 0 {
		want = nil
		for range rounds {
			want = append(want, row.want...)
		}
	}

	var afterWrites func()
	if row.check != nil {
		afterWrites = row.check(t, b)
	}
	sentClose := row.early && row.writes[0].closes
	failing := row.end == endClose && !row.writesClose() // the server is to fail the connection
writes:
	for round := range rounds {
		for i, w := range writes {
			if w.await > 0 && !r.wait(func() bool { return len(r.got) >= w.await }, 5*time.Second) {
				t.Fatalf("before write %d: got %s, want %d events first", i, eventsString(r.got), w.await)
			}
			if w.open > 0 {
				r.wait(r.over, w.open)
				if r.over() {
					t.Fatalf("before write %d: the server closed early (%v %v); events %s", i, r.closed, r.ended, eventsString(r.got))
				}
			}
			time.Sleep(w.pause)
			if r.over() && failing {
				break writes // failed already: what is left would not be read
			}
			if err := c.WriteChunks(w.data, w.chop, 0); err != nil {
				if failing {
					t.Logf("write %d: %v (the server had failed the connection)", i, err)
					break writes
				}
				t.Fatalf("write %d: %v", i, err)
			}
			sentClose = sentClose || w.closes
		}
		if row.rounds > 0 {
			n := (round + 1) * len(row.want)
			if !r.wait(func() bool { return len(r.got) >= n }, limit) {
				t.Fatalf("round %d: got %s", round, eventsString(r.got[len(r.got)-min(len(r.got), 3):]))
			}
		}
	}
	if afterWrites != nil {
		afterWrites()
	}

	codes := row.codes
	switch row.end {
	case endDrop:
		c.Conn.Close()
		if !eventually(5*time.Second, func() bool { return len(b.log.Records("session")) > 0 }) {
			t.Fatal("the bridge did not end the session after the client dropped the connection")
		}
		if rec := b.log.Records("session")[0]; rec["close"] != "1006" {
			t.Errorf("session did not end with close=1006: %v", rec)
		}
		return
	case endEcho:
		r.wait(func() bool { return len(r.got) >= len(want) }, limit)
		if !r.over() {
			if err := c.WriteClose(codeNormal, ""); err != nil {
				t.Fatalf("sending close: %v", err)
			}
			sentClose = true
		}
		codes = []int{codeNormal}
	}

	// The server's close frame, then an orderly TCP close.
	if !r.wait(func() bool { return r.closed != nil }, 5*time.Second) {
		switch {
		case r.ended == nil:
			t.Fatalf("no close frame within 5s; events %s", eventsString(r.got))
		case row.dropOK && r.ended.err == nil:
			t.Logf("server dropped TCP without a close frame (Autobahn allows it here)")
		default:
			t.Fatalf("no close frame, connection ended: %v; events %s", r.ended, eventsString(r.got))
		}
	}
	if r.closed != nil {
		ok := false
		for _, code := range codes {
			ok = ok || r.closed.code == code
		}
		if !ok {
			t.Errorf("server closed with %d, want one of %v", r.closed.code, codes)
		}
		if r.closed.partial > 0 {
			t.Logf("close frame ended an echoed message after %d bytes", r.closed.partial)
		}
		if !sentClose {
			// Answer as a client must (RFC 6455 5.5.1).
			p := binary.BigEndian.AppendUint16(nil, uint16(r.closed.code))
			if r.closed.code == noStatus {
				p = nil
			}
			_ = c.WriteFrame(true, wstest.OpClose, p)
		}
	}
	if !r.wait(func() bool { return r.ended != nil }, 5*time.Second) {
		t.Fatalf("server did not close TCP within 5s of its close frame")
	}
	if r.ended.kind == evEnd && r.ended.err != nil {
		t.Errorf("unclean TCP close: %v", r.ended.err)
	}

	switch {
	case sameEvents(r.got, want):
	case row.matchesAlt(r.got):
		t.Logf("NON-STRICT/INFORMATIONAL outcome: got %s, strict %s", eventsString(r.got), eventsString(want))
	default:
		t.Errorf("got %s\nwant %s", eventsString(r.got), eventsString(want))
		for _, alt := range row.alts {
			t.Errorf("  or %s", eventsString(alt))
		}
	}
}

func (row confRow) writesClose() bool {
	for _, w := range row.writes {
		if w.closes {
			return true
		}
	}
	return false
}

func (row confRow) matchesAlt(got []confEvent) bool {
	for _, alt := range row.alts {
		if sameEvents(got, alt) {
			return true
		}
	}
	return false
}

// confBridge is a server the rows talk to: its address, and its log for
// the rows that read it.
type confBridge struct {
	Addr string
	log  *testLog
}

// confServe runs testchild cat with len32 framing behind every path, with
// maxMessage as Endpoint.MaxMessage (<0: no limit).
func confServe(t *testing.T, maxMessage int64) *confBridge {
	t.Helper()
	lg := newTestLog()
	_, addr := serveTest(t, Options{
		Endpoints: []Endpoint{{Command: []string{testChildPath(t), "cat"}, Framing: "len32", MaxMessage: maxMessage}},
		Logger:    lg.Logger(),
	})
	return &confBridge{Addr: addr, log: lg}
}

func TestConformance(t *testing.T) {
	skipShort(t)
	echo := confServe(t, -1) // --max-message=0: no limit
	limited := confServe(t, limitedMax)
	var rows []confRow
	for _, group := range [][]confRow{
		framingRows(), pingRows(), rsvRows(), opcodeRows(), fragmentRows(),
		utf8Rows(), closeRows(), limitRows(), autoFragmentRows(),
	} {
		rows = append(rows, group...)
	}
	seen := map[string]bool{}
	for _, row := range rows {
		if seen[row.name] {
			t.Fatalf("two rows named %q", row.name)
		}
		seen[row.name] = true
		t.Run(row.name, func(t *testing.T) {
			if !row.serial {
				t.Parallel()
			}
			if row.long && testing.Short() {
				t.Skip("long: runs without -short")
			}
			if row.build != nil {
				row.build(&row)
			}
			b := echo
			switch row.bridge {
			case bridgeLimited:
				b = limited
			case bridgeOwn:
				b = confServe(t, -1)
			}
			row.run(t, b)
		})
	}
	t.Run("2.x 10 pings while output streams to a slow client", pingsUnderLoad)
}
