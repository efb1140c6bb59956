package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// hub runs the one child of a shared endpoint (ModeShared) for all the
// endpoint's clients, its members. A supervisor goroutine starts the
// child, reads its stdout and restarts it with backoff when it exits.
//
// Output: each batch of pieces cut from stdout is framed once into a blob
// that every member it is for shares; each member queues blobs (bounded by
// SharedOptions.Queue) and writes what it has queued with as few system
// calls as the socket takes, first without blocking from the fan-out
// itself, then, if the socket is full, from a goroutine of its own that
// lives until the queue is empty. The fastest members set the pace at
// which stdout is read (see waitPace); a member a whole Queue behind them,
// or one that takes nothing while it holds the others back, is
// disconnected, or loses whole messages (DropSlow).
//
// Input: each member's messages go to stdin whole, one message at a time
// under inMu, so messages of different members never interleave. With the
// mux framing each record carries the member's id, and open and close
// records tell the child who comes and goes. A member talks only to the
// child that knows it (member.announced): a client closed for a restart
// never reaches the next child. A child that does not read its stdin
// holds back the members that write to it, and nobody else: clients still
// come and go (but for mux, whose open and close records must be written).
//
// Goroutines: the supervisor, which also runs the fan-out; while a child
// runs, a watcher that ends it when Serve ends or it exits, and, as it
// starts, one that tells it who is connected. Each member has its own
// (see member).
type hub struct {
	srv *Server
	ep  *endpoint
	mux bool

	// inMu orders what is written to stdin: it is held around each write
	// (a message, an open or a close record), which blocks while the child
	// does not read, and, with mux, while a new child gets the open
	// records and while a member joins or leaves, so that no message
	// overtakes its member's open record or follows its close. Lock inMu
	// before mu.
	inMu sync.Mutex

	// mu guards what follows and the members' announced. Lock mu before
	// a member's qmu.
	mu      sync.Mutex
	members map[uint32]*member
	nextID  uint32
	running bool           // the supervisor runs
	stopped bool           // Serve is ending: nobody joins, nothing restarts
	proc    *procs.Process // the running child; nil between runs
	stdin   *stdinWriter   // its stdin; nil between runs
	gen     uint64         // counts the children started
	ready   chan struct{}  // closed once the child of gen runs, for writes waiting for it
	stop    chan struct{}  // closed by shutdown

	snap []*member // the fan-out's reusable snapshot of members
	ref  int       // the fan-out's: what the fastest member had queued before the last read (see pace)

	// paceWake tells a fan-out held back by its members (see waitPace)
	// to look again: a member fell below the low-water mark, left or is
	// being closed. Sends never block.
	paceWake chan struct{}
}

func newHub(srv *Server, ep *endpoint) *hub {
	return &hub{
		srv: srv, ep: ep, mux: ep.Framing == "mux",
		members: map[uint32]*member{}, stop: make(chan struct{}), ready: make(chan struct{}),
		paceWake: make(chan struct{}, 1),
	}
}

// ensureRunning starts the supervisor unless it runs or Serve is ending.
func (h *hub) ensureRunning() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running || h.stopped {
		return
	}
	h.running = true
	h.srv.sessions.Add(1) // Serve waits for the supervisor
	go h.supervise()
}

// supervise runs the child until Serve ends, restarting it with backoff:
// the wait doubles after each run shorter than stableRun.
func (h *hub) supervise() {
	defer h.srv.sessions.Done()
	base := h.ep.Shared.RestartDelay
	delay := base
	for {
		began := time.Now()
		status, err := h.runChild()
		select {
		case <-h.stop:
			return
		default:
		}
		if time.Since(began) >= stableRun {
			delay = base
		}
		msg := "shared program exited; restarting"
		if err != nil {
			msg = "shared program failed; restarting"
		}
		h.srv.log.Error(msg, "path", h.ep.Path, "exit", status, "err", err, "after", delay)
		if !h.ep.Shared.KeepClients {
			for _, m := range h.snapshot() {
				m.closeAfterQueued(CloseServiceRestart, "the program restarts; reconnect")
			}
		}
		select {
		case <-h.stop:
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*base)
	}
}

// stableRun is how long a child must have run for its exit not to count
// as a crash loop, resetting the restart backoff.
const stableRun = 10 * time.Second

// runChild starts the child, fans its output out until stdout ends, and
// waits for it to exit.
func (h *hub) runChild() (string, error) {
	dec, enc, err := framing.New(h.ep.Framing)
	if err != nil {
		return "", err
	}
	cgi := procs.CGI{
		ServerSoftware: h.srv.opts.ServerSoftware,
		ScriptName:     h.ep.Path,
		Protocol:       "HTTP/1.1",
	}
	proc, err := procs.Start(h.srv.childSpec(h.ep, cgi.Environ(h.ep.PassEnv), func(line []byte) {
		h.srv.log.Warn("shared program stderr", "path", h.ep.Path, "line", string(line))
	}))
	if err != nil {
		return "", err
	}
	h.srv.forks.Add(1)
	defer h.srv.forks.Add(-1)
	stdin, err := newStdinWriter(proc.Stdin, enc)
	if err != nil {
		_ = proc.Terminate(h.ep.CloseGrace)
		_ = proc.Stdout.Close()
		<-proc.Done()
		return proc.Status().String(), err
	}
	h.srv.log.Info("shared program started", "path", h.ep.Path, "pid", proc.PID)

	if h.mux {
		h.inMu.Lock() // until the open records are written
	}
	h.mu.Lock()
	h.proc, h.stdin = proc, stdin
	h.gen++
	var tell []*member
	for _, m := range h.members {
		// Without KeepClients the members left from the last child are
		// being closed: the new one never hears of them.
		if h.ep.Shared.KeepClients || !m.closing() {
			m.announced = h.gen
			tell = append(tell, m)
		}
	}
	close(h.ready) // messages waiting for a child go now (after the open records)
	h.mu.Unlock()
	// A mux child learns who is connected before any member's message.
	// The fan-out runs meanwhile: a child may answer each open record
	// before it reads the next.
	var announcing sync.WaitGroup
	if h.mux {
		announcing.Go(func() {
			defer h.inMu.Unlock()
			for _, m := range tell {
				h.writeOpen(stdin, m)
			}
		})
	}

	// When Serve ends, or the child exits, the watcher ends the child's
	// group and has the fan-out stop once stdout holds nothing more, even
	// if a process outside the group keeps it open.
	fanned := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-h.stop:
		case <-proc.Done():
		case <-fanned:
			return
		}
		_ = proc.Terminate(h.ep.CloseGrace)
		_ = proc.Stdout.SetReadDeadline(time.Now())
	}()
	h.fanOut(proc, dec)
	close(fanned)
	<-watched

	// stdout is done: end the whole group as a session does. This comes
	// first: a write blocked on a stdin the child no longer reads holds
	// inMu, and only closing stdin frees it.
	if err := proc.Terminate(h.ep.CloseGrace); err != nil {
		h.srv.log.Error("shared program did not end", "path", h.ep.Path, "pid", proc.PID, "err", err)
	}
	announcing.Wait()
	h.mu.Lock()
	h.proc, h.stdin = nil, nil
	h.ready = make(chan struct{})
	h.mu.Unlock()
	_ = proc.Stdout.Close()
	<-proc.Done()
	return proc.Status().String(), nil
}

// fanOut reads the child's stdout until it ends and sends each batch of
// pieces to the members it is for.
func (h *hub) fanOut(proc *procs.Process, dec framing.Decoder) {
	out := stdoutStream{dec: dec, buf: make([]byte, h.srv.opts.OutBuffer)}
	grown, held := false, false
	// A broadcast reads no more at a time than half of --queue, so that a
	// batch fits in the queue of a member that keeps up (see pace).
	most := len(out.buf)
	if !h.mux {
		most = max(h.lowWater(), 4096)
	}
	for !out.eof {
		if !held {
			h.waitPace(proc)
		}
		room := out.buf[out.end:min(len(out.buf), out.end+most)]
		var n int
		var err error
		if held {
			n, err = readHeld(proc.Stdout, room)
		} else {
			n, err = proc.Stdout.Read(room)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The watcher: the child is gone or Serve ends. Read what
			// stdout holds, without waiting for more.
			held = true
			_ = proc.Stdout.SetReadDeadline(time.Time{})
			continue
		}
		if n >= pipeDefault && !grown {
			grown = true
			if rc, err := proc.Stdout.SyscallConn(); err == nil {
				_ = rc.Control(growPipe)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				h.srv.log.Error("reading shared program stdout", "path", h.ep.Path, "err", err)
			}
			out.eof = true
		}
		out.end += n
		if !out.cut(h.route) {
			h.srv.log.Error("shared program output is malformed; restarting it", "path", h.ep.Path, "err", out.err)
			return
		}
	}
}

// The pace of a broadcast is set by the fastest members: the fan-out
// reads the child's stdout only while some member that sets the pace has
// less than lowWater (half of --queue) queued, or no member sets it.
// While every one is behind, stdout is not read, its pipe fills and the
// child waits, as it does for the client of a session. A member that
// takes nothing for stallLimit while it holds the fan-out back no longer
// sets the pace (until it takes something): it is cut with 1013, or with
// DropSlow it loses whole messages like any member a whole --queue behind
// the fastest (see member.push). Members being closed never set the
// pace. With mux, where output is addressed, members do not set the pace:
// a member more than --queue behind is slow, as it always was.

// stallLimit is how long a member that takes nothing may hold the
// fan-out, and so the child, back.
const stallLimit = 5 * time.Second

func (h *hub) lowWater() int { return h.ep.Shared.Queue / 2 }

// wakePace has a fan-out held back by its members look again.
func (h *hub) wakePace() {
	select {
	case h.paceWake <- struct{}{}:
	default:
	}
}

// pace returns what the fastest member that sets the pace has queued
// (0: none sets it), and whether the fan-out may read on. Only the
// supervisor goroutine calls it.
func (h *hub) pace() (ref int, ok bool) {
	if h.mux {
		return 0, true
	}
	ref, pacing := 0, false
	for _, m := range h.snapshot() {
		m.qmu.Lock()
		if !m.dead && m.closeCode == 0 && !m.stalled && (!pacing || m.queued < ref) {
			ref, pacing = m.queued, true
		}
		m.qmu.Unlock()
	}
	clear(h.snap)
	return ref, !pacing || ref < h.lowWater()
}

// waitPace holds the fan-out while every member that sets the pace is
// behind; it gives up once the child has exited or Serve ends (what
// stdout still holds is read then). Members that took nothing in a
// stallLimit of waiting stop setting the pace.
func (h *hub) waitPace(proc *procs.Process) {
	var ok bool
	if h.ref, ok = h.pace(); ok {
		return
	}
	timer := time.NewTimer(stallLimit)
	defer timer.Stop()
	h.markProgress()
	for {
		select {
		case <-h.paceWake:
		case <-timer.C:
			h.stallIdle()
			h.markProgress()
			timer.Reset(stallLimit)
		case <-h.stop:
			return
		case <-proc.Done():
			return
		}
		if h.ref, ok = h.pace(); ok {
			return
		}
	}
}

// markProgress notes what each member has written so far.
func (h *hub) markProgress() {
	for _, m := range h.snapshot() {
		m.qmu.Lock()
		m.mark = m.written
		m.qmu.Unlock()
	}
	clear(h.snap)
}

// stallIdle finds the members that wrote nothing since markProgress and
// still have something queued: they no longer set the pace, and are cut
// unless DropSlow.
func (h *hub) stallIdle() {
	for _, m := range h.snapshot() {
		m.qmu.Lock()
		if m.dead || m.closeCode != 0 || m.stalled || m.written != m.mark || m.queued == 0 {
			m.qmu.Unlock()
			continue
		}
		m.stalled = true
		queued := m.queued
		if h.ep.Shared.DropSlow {
			m.qmu.Unlock()
			h.logf(slog.LevelInfo, "slow client took nothing; it no longer holds the program back (--drop-slow)", "id", m.sid, "queued", queued, "for", stallLimit)
			continue
		}
		// There is a writer: the queue is not empty.
		why := "too slow: took nothing for " + stallLimit.String()
		m.cutLocked(CloseTryAgainLater, why)
		m.qmu.Unlock()
		h.logf(slog.LevelInfo, "slow client disconnected", "id", m.sid, "queued", queued, "limit", h.ep.Shared.Queue, "why", why)
	}
	clear(h.snap)
}

// readHeld reads what f holds now, without waiting: io.EOF when it holds
// nothing, whether or not a writer still has it open.
func readHeld(f *os.File, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), p)
			if rerr != unix.EINTR {
				break
			}
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == unix.EAGAIN, rerr == nil && n == 0:
		return 0, io.EOF
	case rerr != nil:
		return 0, rerr
	}
	return n, nil
}

// route sends one batch of pieces where it belongs: to every member, or
// with mux, to the members the records name.
func (h *hub) route(pieces []framing.Piece) {
	if !h.mux {
		h.broadcast(pieces)
		return
	}
	for len(pieces) > 0 {
		// A run of pieces for the same connection becomes one blob.
		p := pieces[0]
		if p.Kind == framing.Close {
			code, reason, err := framing.ParseMuxClose(p.Data)
			if err != nil || code == 0 {
				code = uint16(CloseNormal)
			}
			h.closeByChild(p.Conn, CloseCode(code), reason)
			pieces = pieces[1:]
			continue
		}
		n := 1
		for n < len(pieces) && pieces[n].Conn == p.Conn && pieces[n].Kind != framing.Close {
			n++
		}
		if p.Conn == 0 {
			h.broadcast(pieces[:n])
		} else {
			h.mu.Lock()
			m := h.members[p.Conn]
			h.mu.Unlock()
			if m != nil {
				b := newBlob(pieces[:n])
				m.push(b, 0)
				b.release()
			}
		}
		pieces = pieces[n:]
	}
}

// closeByChild closes the member the child names, or every member for id
// 0, after what was sent to it before.
func (h *hub) closeByChild(id uint32, code CloseCode, reason string) {
	if id == 0 {
		for _, m := range h.snapshot() {
			m.closeAfterQueued(code, reason)
		}
		return
	}
	h.mu.Lock()
	m := h.members[id]
	h.mu.Unlock()
	if m != nil {
		m.closeAfterQueued(code, reason)
	}
}

// broadcast sends pieces to every member: a member is slow when it is
// more than --queue behind the fastest as the batch was read (see pace).
func (h *hub) broadcast(pieces []framing.Piece) {
	ref := h.ref
	members := h.snapshot()
	if len(members) == 0 {
		return
	}
	b := newBlob(pieces)
	for _, m := range members {
		m.push(b, ref)
	}
	b.release()
	clear(members) // hold no member past its life
}

// snapshot returns the members now, in a slice the fan-out reuses: only
// the supervisor goroutine may call it.
func (h *hub) snapshot() []*member {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshotLocked()
}

func (h *hub) snapshotLocked() []*member {
	h.snap = h.snap[:0]
	for _, m := range h.members {
		h.snap = append(h.snap, m)
	}
	return h.snap
}

// join adds a client to the hub and starts its input pump. The client is
// closed at once if Serve is ending.
func (h *hub) join(m *member) {
	h.ensureRunning()
	m.prepare()
	if h.mux {
		h.inMu.Lock() // the open record goes before any of m's messages
		defer h.inMu.Unlock()
	}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		m.wc.Close(CloseGoingAway, "server shutting down")
		go m.pumpIn() // reads the client's answer
		return
	}
	h.nextID++
	if h.nextID == 0 {
		h.nextID = 1 // 0 means everyone
	}
	m.id = h.nextID
	h.members[m.id] = m
	stdin := h.stdin
	if stdin != nil {
		m.announced = h.gen
	}
	h.mu.Unlock()
	if stdin != nil && h.mux {
		h.writeOpen(stdin, m)
		if !h.ep.Shared.KeepClients {
			m.env = nil // sent; a restarted child never sees this member
		}
	}
	go m.pumpIn()
}

// writeOpen tells a mux child about member m; inMu is held.
func (h *hub) writeOpen(stdin *stdinWriter, m *member) {
	env := framing.AppendMuxEnv(nil, m.environ())
	h.writeTo(stdin, []framing.Piece{{Data: env, Kind: framing.Open, Conn: m.id, First: true, Final: true}})
}

// leave removes a member and tells a mux child that knows it that it is
// gone. code is how the client side ended.
func (h *hub) leave(m *member, code CloseCode, reason string) {
	if h.mux {
		h.inMu.Lock() // the close record goes after m's messages
		defer h.inMu.Unlock()
	}
	h.mu.Lock()
	delete(h.members, m.id)
	stdin, known := h.stdin, h.knowsLocked(m)
	h.mu.Unlock()
	if h.mux && known {
		rec := framing.AppendMuxClose(nil, uint16(code), reason)
		h.writeTo(stdin, []framing.Piece{{Data: rec, Kind: framing.Close, Conn: m.id, First: true, Final: true}})
	}
}

// knowsLocked reports whether the running child knows member m; mu is
// held.
func (h *hub) knowsLocked(m *member) bool { return h.stdin != nil && m.announced == h.gen }

// write sends member m's whole messages to the child's stdin. While no
// child runs (it is starting, or restarting) they wait for the next one,
// which holds the client back; they are dropped once Serve ends or m is
// being closed, and when the running child does not know m (it was the
// last child's, closed for the restart).
func (h *hub) write(m *member, pieces []framing.Piece) {
	h.inMu.Lock()
	defer h.inMu.Unlock()
	for {
		h.mu.Lock()
		stdin, known, ready := h.stdin, h.knowsLocked(m), h.ready
		wait := stdin == nil && (h.ep.Shared.KeepClients || m.announced == 0)
		h.mu.Unlock()
		if known {
			h.writeTo(stdin, pieces)
			return
		}
		var quit chan struct{}
		if wait {
			quit = m.waitQuit() // nil: m is being closed
		}
		if quit == nil {
			h.srv.log.Debug("no shared program running for this client; message dropped", "path", h.ep.Path, "id", m.sid)
			return
		}
		h.inMu.Unlock()
		select {
		case <-ready:
		case <-quit:
		case <-h.stop:
		}
		h.inMu.Lock()
		select {
		case <-h.stop:
			return
		default:
		}
	}
}

// writeTo writes pieces to stdin with inMu held. A write blocks while the
// child does not read: that holds back the members that write, which is
// the backpressure a shared child gets. It is never abandoned half-way,
// which would break the framing for everyone.
func (h *hub) writeTo(stdin *stdinWriter, pieces []framing.Piece) {
	if err := stdin.write(pieces); err != nil {
		h.srv.log.Debug("shared program not reading stdin; message dropped", "path", h.ep.Path, "err", err)
	}
}

// shutdown stops the hub as Serve ends: every member is closed with 1001,
// and the child is ended; the supervisor then returns.
func (h *hub) shutdown() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.stopped = true
	close(h.stop) // the supervisor ends the child
	members := make([]*member, 0, len(h.members))
	for _, m := range h.members {
		members = append(members, m)
	}
	h.mu.Unlock()
	for _, m := range members {
		m.closeNow(CloseGoingAway, "server shutting down")
	}
}

// logf logs for a member.
func (h *hub) logf(level slog.Level, msg string, args ...any) {
	h.srv.log.Log(context.Background(), level, msg, append([]any{"path", h.ep.Path}, args...)...)
}

// String names the hub in logs.
func (h *hub) String() string { return fmt.Sprintf("shared %s", h.ep.Path) }
