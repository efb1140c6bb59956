package bridge

// Slow clients of a shared child: a client that does not read is cut off
// (1013) or, with DropSlow, loses whole messages, and holds up nobody.

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// A client that does not read is cut off with 1013 once its queue is
// full; the others lose nothing. What it reads is whole messages in order,
// then the close, if it reads them within the close timeout (2s): then
// the server gives up on it.
func TestSharedSlowClientCutOff(t *testing.T) {
	skipShort(t)
	t.Parallel()
	const size = 1000
	s, _, slow, goodDone := slowRun(t, SharedOptions{})
	recs := s.log.WaitRecords(t, "slow client disconnected", 1, 10*time.Second)
	if recs[0]["limit"] != "65536" {
		t.Errorf("log record %v: want limit=65536", recs[0])
	}
	cut, err := time.Parse(time.RFC3339Nano, recs[0]["time"])
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for {
		op, data, cf, err := slow.ReadMessage(10 * time.Second)
		if errors.Is(err, wstest.ErrClosed) {
			if cf.CloseCode() != 1013 {
				t.Fatalf("close %d %q after %d lines, want 1013", cf.CloseCode(), cf.CloseReason(), got)
			}
			break
		}
		if err != nil && time.Since(cut) < 1900*time.Millisecond {
			t.Fatalf("after %d lines, %v after the cut: %v, want a close frame with 1013", got, time.Since(cut), err)
		}
		if err != nil {
			t.Logf("NOTE: %v after %d lines: this client took %v to read, more than the close timeout", err, got, time.Since(cut))
			break
		}
		if op == wstest.OpText && strings.HasPrefix(string(data), "started ") && got == 0 {
			continue
		}
		if n, ok := floodNumber(string(data), size); op != wstest.OpText || !ok || n != got+1 {
			t.Fatalf("after %d lines got %.30q (%d bytes), want line %d whole", got, data, len(data), got+1)
		}
		got++
	}
	t.Logf("the slow client got %d lines, then 1013, %v after the cut", got, time.Since(cut))
	if got >= 3000 {
		t.Errorf("the slow client got all %d lines: it was not slow", got)
	}
	goodDone()
	access := s.access(t, 1)
	if access[0]["close"] != "1013" {
		t.Errorf("access record %v: want close=1013", access[0])
	}
	// The metrics count it, beside the 1013 the session ended with.
	text := string(s.srv.stats.write(s.srv))
	for _, want := range []string{`wsbridge_slow_closed_total{endpoint="*"} 1`, `wsbridge_connections_closed_total{endpoint="*",code="1013"} 1`} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("metrics without %s:\n%s", want, text)
		}
	}
}

// With DropSlow a client that does not read stays connected and loses
// whole messages: what it reads is some of the lines, each whole, in
// order, and then what comes after.
func TestSharedDropSlow(t *testing.T) {
	t.Parallel()
	const lines, size = 3000, 1000
	s, good, slow, goodDone := slowRun(t, SharedOptions{DropSlow: true})
	s.log.WaitRecords(t, "slow client: dropping messages (--drop-slow)", 1, 10*time.Second)
	goodDone()
	last, got := 0, 0
	quiet := false
	for {
		timeout := 10 * time.Second
		if !quiet {
			timeout = 500 * time.Millisecond // long enough for the queue to drain once read
		}
		op, data, cf, err := slow.ReadMessage(timeout)
		if errors.Is(err, os.ErrDeadlineExceeded) && !quiet {
			// Everything queued is read: what is sent now must come.
			quiet = true
			good[0].say(t, "end")
			continue
		}
		if err != nil {
			t.Fatalf("after %d lines: %v %d %q", got, err, cf.CloseCode(), cf.CloseReason())
		}
		msg := string(data)
		if msg == "echo: end" {
			break
		}
		if strings.HasPrefix(msg, "started ") && got == 0 {
			continue
		}
		n, ok := floodNumber(msg, size)
		if op != wstest.OpText || !ok || n <= last {
			t.Fatalf("after line %d got %.30q (%d bytes), want a later line whole", last, msg, len(msg))
		}
		last = n
		got++
	}
	t.Logf("the slow client got %d of %d lines, the last %d", got, lines, last)
	if got >= lines {
		t.Errorf("the slow client got all %d lines: nothing was dropped", lines)
	}
	// The metrics count at least the lines it missed.
	dropped, cut := s.srv.eps[0].hub.Slow()
	if dropped < uint64(lines-got) || cut != 0 {
		t.Errorf("hub counts %d messages dropped, %d clients cut; want at least the %d lines missed, none cut", dropped, cut, lines-got)
	}
	text := string(s.srv.stats.write(s.srv))
	if want := `wsbridge_slow_dropped_messages_total{endpoint="*"} ` + strconv.FormatUint(dropped, 10); !strings.Contains(text, "\n"+want+"\n") {
		t.Errorf("metrics without %s:\n%s", want, text)
	}
}

// A client that the server closes (here for a restart) but that reads
// nothing is not kept for ever: it has the close timeout to take its
// output and the close, and is then dropped.
func TestSharedCloseStuckClient(t *testing.T) {
	skipShort(t)
	t.Parallel()
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), Shared: dropSlow64K})
	_, good := stuckClients(t, s, 1)
	good.say(t, "exit 3")
	if code, reason, _ := good.closed(t); code != 1012 {
		t.Fatalf("close %d %q, want 1012", code, reason)
	}
	for _, rec := range s.log.WaitRecords(t, "session", 2, 20*time.Second) {
		if rec["close"] != "1012" {
			t.Errorf("access record %v: want close=1012", rec)
		}
	}
}

// A client that reads nothing but pings all the time holds up nobody:
// the pongs it is owed wait for its socket like its messages. When it
// reads at last, every frame is whole: no pong lands inside a message.
func TestSharedPingingStuckClient(t *testing.T) {
	t.Parallel()
	const lines, size = 3000, 1000
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), Shared: dropSlow64K})
	pinger := slowDial(t, s.addr)
	stop := make(chan struct{})
	stopPings := sync.OnceFunc(func() { close(stop) })
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopPings()
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			if pinger.WriteFrame(true, wstest.OpPing, []byte(strconv.Itoa(i))) != nil {
				return
			}
		}
	})
	good := dialJoined(t, s.addr, 2)
	good[0].say(t, "go 3000 1000 3")
	readFloodAll(t, good, lines, size)
	stopPings()
	wg.Wait()
	last, quiet := 0, false
	for {
		timeout := 10 * time.Second
		if !quiet {
			timeout = 500 * time.Millisecond // long enough for the queue to drain once read
		}
		f, err := pinger.ReadFrame(timeout)
		if errors.Is(err, os.ErrDeadlineExceeded) && !quiet {
			// Everything queued is read: what is sent now must come.
			quiet = true
			good[0].say(t, "end")
			continue
		}
		if err != nil {
			t.Fatalf("after line %d: %v", last, err)
		}
		if f.Op == wstest.OpPong {
			continue
		}
		msg := string(f.Payload)
		if f.Op != wstest.OpText || !f.Fin {
			t.Fatalf("after line %d: frame op %d fin %v %.30q: want a whole text message", last, f.Op, f.Fin, msg)
		}
		if msg == "echo: end" {
			break
		}
		if strings.HasPrefix(msg, "started ") && last == 0 {
			continue
		}
		n, ok := floodNumber(msg, size)
		if !ok || n <= last {
			t.Fatalf("after line %d got %.30q (%d bytes), want a later line whole", last, msg, len(msg))
		}
		last = n
	}
}
