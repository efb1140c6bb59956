package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// cgiConn serves one connection in the per-message CGI mode (ModeCGI):
// each message the client sends runs the program once, CGI/1.1 style,
// with the message on stdin; what it prints, after an optional CGI header
// block, is the reply. Scripts of one connection run concurrently (up to
// CGIOptions.PerConn, and CGIOptions.Total for the endpoint) and their
// replies go out in the order of the messages. While all of the
// connection's slots are busy, its input pump waits: the client is not
// read, which is its backpressure.
type cgiConn struct {
	srv  *Server
	ep   *endpoint
	wc   *wsConn
	sid  uint64
	base procs.CGI // the connection's request; Method, ContentLength, ContentType set per message
	inRC syscall.RawConn
	asm  assembler

	slots chan struct{} // this connection's running scripts
	jobs  sync.WaitGroup
	seq   uint64 // messages received, numbering replies

	outMu   sync.Mutex // orders replies; held while one is sent
	next    uint64     // the reply due next
	ready   map[uint64]cgiReply
	gone    bool // the client side has ended: run nothing more, kill what runs
	running map[*procs.Process]struct{}

	finish func(pid int, exit string)
}

// cgiReply is one script's answer: a message, or nothing.
type cgiReply struct {
	data []byte
	kind framing.Kind
	none bool
}

// serveCGI runs the per-message CGI mode on an upgraded connection and
// calls finish when the connection is done.
func (s *Server) serveCGI(ep *endpoint, wc *wsConn, id uint64, cgi procs.CGI, finish func(pid int, exit string)) {
	c := &cgiConn{
		srv: s, ep: ep, wc: wc, sid: id, base: cgi, finish: finish, asm: ep.assembler(),
		slots:   make(chan struct{}, ep.CGI.PerConn),
		ready:   map[uint64]cgiReply{},
		running: map[*procs.Process]struct{}{},
	}
	if s.poller != nil {
		c.inRC = wc.rawConn()
	}
	wc.setParking(c.inRC != nil, c.wakeIn)
	s.track(c) // shutdown closes the client like a session's
	go c.pumpIn()
}

// closeClient closes the client side; the input pump then ends the
// scripts that run.
func (c *cgiConn) closeClient(code CloseCode, reason string) {
	_ = c.wc.Close(code, reason)
}

func (c *cgiConn) wakeIn() {
	if c.inRC != nil && c.srv.poller.Unpark(c.inRC) {
		go c.pumpIn()
	}
}

func (c *cgiConn) pumpIn() {
	err := c.srv.receive(c.wc, c.inRC, c.deliverIn, c.pumpIn)
	if errors.Is(err, errParked) {
		return
	}
	// The client side has ended: nobody will read a reply.
	c.wc.Close(CloseGoingAway, "client went away")
	if c.inRC != nil {
		c.srv.poller.Forget(c.inRC)
	}
	c.outMu.Lock()
	c.gone = true
	for p := range c.running {
		c.jobs.Add(1)
		go func() {
			defer c.jobs.Done()
			_ = p.Terminate(c.ep.CloseGrace)
		}()
	}
	c.outMu.Unlock()
	c.jobs.Wait()
	c.asm.release()
	c.srv.untrack(c)
	c.finish(0, "")
}

// deliverIn starts a script for each whole message. A message is copied
// for its script into a buffer charged to the endpoint's assembly budget
// until the script has run; a client whose message does not fit is
// closed with 1013.
func (c *cgiConn) deliverIn(pieces []framing.Piece) error {
	full := false
	err := c.asm.feed(pieces, func(whole []framing.Piece) {
		for _, p := range whole {
			if full {
				return
			}
			msg := c.ep.assembly.get(len(p.Data))
			if msg == nil {
				full = true
				return
			}
			copy(msg, p.Data)
			c.start(msg, p.Kind)
		}
	})
	if full {
		err = errBudget
	}
	if err != nil {
		c.logf(slog.LevelWarn, "client message refused: assembly budget full",
			"held", c.ep.assembly.held.Load(), "limit", c.ep.assembly.limit)
		return c.wc.fail(CloseTryAgainLater, err)
	}
	return nil
}

// start runs a script for one message once a slot of the connection and
// one of the endpoint are free, waiting for them: while it waits, the
// client is not read. msg is the script's, from the assembly budget, and
// goes back once the script has run.
func (c *cgiConn) start(msg []byte, kind framing.Kind) {
	seq := c.seq
	c.seq++
	c.slots <- struct{}{}
	c.ep.cgiSlots <- struct{}{}
	c.jobs.Add(1)
	go func() {
		defer c.jobs.Done()
		sent := false
		r := c.run(msg, kind, func(r cgiReply) { c.reply(seq, r); sent = true })
		// run has waited for the writer of the script's stdin, on every
		// path (the timeout's too): msg is no longer read.
		c.ep.assembly.put(msg)
		<-c.ep.cgiSlots
		<-c.slots
		if !sent {
			c.reply(seq, r)
		}
	}()
}

// cgiExitGrace is how long the reply may still take once the script has
// exited: what it wrote is in the pipe by then, and a process it left
// behind may hold stdout open for good.
const cgiExitGrace = 100 * time.Millisecond

// run runs the program once for msg and makes its reply. When the reply
// is due while the script still runs (the timeout, too much output), run
// hands it to early before it ends the script, so the client hears at
// once; the slot stays taken until the script is gone.
func (c *cgiConn) run(msg []byte, kind framing.Kind, early func(cgiReply)) cgiReply {
	req := c.base
	req.Method = http.MethodPost
	req.ContentLength = strconv.Itoa(len(msg))
	req.ContentType = "application/octet-stream"
	if kind == framing.Text {
		req.ContentType = "text/plain; charset=utf-8"
	}
	spec := c.srv.childSpec(c.ep, req.Environ(c.ep.PassEnv), func(line []byte) {
		c.logf(slog.LevelWarn, "script stderr", "line", string(line))
	})
	c.outMu.Lock()
	if c.gone {
		c.outMu.Unlock()
		return cgiReply{none: true}
	}
	proc, err := procs.Start(spec)
	if err == nil {
		c.running[proc] = struct{}{}
	}
	c.outMu.Unlock()
	if err != nil {
		c.logf(slog.LevelError, "cannot start script", "err", err)
		return cgiError(http.StatusBadGateway, "cannot start the script")
	}
	c.srv.forks.Add(1)
	defer c.srv.forks.Add(-1)
	defer func() {
		c.outMu.Lock()
		delete(c.running, proc)
		c.outMu.Unlock()
	}()

	// The timeout covers the whole run: feeding stdin, reading stdout,
	// the exit. It is a deadline on both pipes, so it ends the reply at
	// the timeout whatever holds them.
	deadline := time.Now().Add(c.ep.CGI.Timeout)
	_ = proc.Stdin.SetWriteDeadline(deadline)
	_ = proc.Stdout.SetReadDeadline(deadline)

	// stdin is written while stdout is read: a script may answer before
	// it has read everything, and either pipe can fill.
	fed := make(chan error, 1)
	go func() {
		_, err := proc.Stdin.Write(msg)
		proc.Stdin.Close()
		fed <- err
	}()
	// Once the script has exited, reading stops cgiExitGrace later, and
	// feeding stdin at once, whoever else holds the pipes. The watcher
	// ends before run reads on.
	stopWatch, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-proc.Done():
			_ = proc.Stdin.SetWriteDeadline(time.Now())
			if t := time.Now().Add(cgiExitGrace); t.Before(deadline) {
				_ = proc.Stdout.SetReadDeadline(t)
			}
		case <-stopWatch:
		}
	}()
	out, tooBig, rerr := readAtMost(proc.Stdout, c.ep.CGI.MaxOut)
	close(stopWatch)
	<-watched
	if tooBig {
		// The reply is the 502: stop feeding a script that may never
		// read the rest, or the reply waits for the timeout.
		_ = proc.Stdin.SetWriteDeadline(time.Now())
	}
	timedOut := false
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		// The timeout, or the exit grace is over: then what is in the
		// pipe is the rest of the reply (a late reader may find the
		// deadline passed before it read what was there).
		timedOut, rerr = !time.Now().Before(deadline), nil
		if !timedOut {
			var rest []byte
			rest, tooBig = readReady(proc.Stdout, c.ep.CGI.MaxOut-int64(len(out)))
			out = append(out, rest...)
		}
	}
	_ = proc.Stdout.Close()
	<-fed
	if !timedOut && !tooBig {
		wait := time.NewTimer(time.Until(deadline))
		select {
		case <-proc.Done():
		case <-wait.C:
			timedOut = true
		}
		wait.Stop()
	}
	switch {
	case timedOut:
		c.logf(slog.LevelError, "script timed out", "pid", proc.PID, "timeout", c.ep.CGI.Timeout)
		early(cgiError(http.StatusGatewayTimeout, "the script ran longer than "+c.ep.CGI.Timeout.String()))
		_ = proc.Terminate(c.ep.CloseGrace)
		return cgiReply{}
	case tooBig:
		c.logf(slog.LevelError, "script output too large", "pid", proc.PID, "limit", c.ep.CGI.MaxOut)
		early(cgiError(http.StatusBadGateway, fmt.Sprintf("the script wrote more than %d bytes", c.ep.CGI.MaxOut)))
		_ = proc.Terminate(c.ep.CloseGrace)
		return cgiReply{}
	}
	_ = proc.Terminate(c.ep.CloseGrace) // anything left in its group, or outside it
	status := proc.Status()
	switch {
	case rerr != nil:
		c.logf(slog.LevelError, "reading script output", "pid", proc.PID, "err", rerr)
		return cgiError(http.StatusBadGateway, "cannot read the script's output")
	case !status.Success():
		c.logf(slog.LevelError, "script failed", "pid", proc.PID, "exit", status.String())
		return cgiError(http.StatusBadGateway, "the script failed: "+status.String())
	}
	resp, err := framing.ParseCGIResponse(out)
	if err != nil {
		c.logf(slog.LevelError, "script output is not a CGI response", "pid", proc.PID, "err", err)
		return cgiError(http.StatusBadGateway, "the script's header block is malformed: "+err.Error())
	}
	if len(resp.Body) == 0 {
		return cgiReply{none: true} // nothing to say, as a 204 says nothing
	}
	r := cgiReply{data: resp.Body, kind: framing.Binary}
	if resp.IsText() {
		r.kind = framing.Text
	}
	return r
}

// cgiError is the reply when a script fails: a JSON object a program can
// tell from a script's own answer and a person can read.
func cgiError(status int, detail string) cgiReply {
	b, _ := json.Marshal(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{http.StatusText(status), status, detail})
	return cgiReply{data: b, kind: framing.Text}
}

// reply stores reply seq and sends every reply that is now due, in
// order, on whichever goroutine completes the sequence.
func (c *cgiConn) reply(seq uint64, r cgiReply) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.ready[seq] = r
	for {
		r, ok := c.ready[c.next]
		if !ok {
			return
		}
		delete(c.ready, c.next)
		c.next++
		if r.none || c.gone {
			continue
		}
		// Sending under outMu keeps replies in order; a slow client
		// holds back only its own scripts' replies.
		if err := c.wc.Send([]framing.Piece{{Data: r.data, Kind: r.kind, First: true, Final: true}}); err != nil {
			c.gone = true
		}
	}
}

// readAtMost reads r to its end, keeping at most limit bytes; tooBig
// reports that there were more.
func readAtMost(r io.Reader, limit int64) (out []byte, tooBig bool, err error) {
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(r, limit+1))
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	if n > limit {
		return b.Bytes()[:limit], true, err
	}
	return b.Bytes(), false, err
}

// readReady reads what is in f's pipe now, without waiting (see
// readHeld), keeping at most limit bytes; more reports that there was
// more.
func readReady(f *os.File, limit int64) (out []byte, more bool) {
	if f.SetReadDeadline(time.Time{}) != nil {
		return nil, false
	}
	buf := make([]byte, 16<<10)
	for {
		n, err := readHeld(f, buf)
		if err != nil {
			return out, false // io.EOF: the pipe is empty
		}
		if int64(len(out)+n) > limit {
			return append(out, buf[:limit-int64(len(out))]...), true
		}
		out = append(out, buf[:n]...)
	}
}

func (c *cgiConn) logf(level slog.Level, msg string, args ...any) {
	c.srv.log.Log(context.Background(), level, msg, append([]any{"id", c.sid, "path", c.ep.Path}, args...)...)
}
