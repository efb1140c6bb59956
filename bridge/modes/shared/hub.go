package shared

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/wsbridge/wsbridge/bridge/modes"
	"github.com/wsbridge/wsbridge/bridge/stdio"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// Hub runs the one child of a shared endpoint (ModeShared) for all the
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
type Hub struct {
	host *modes.Host
	prog *modes.Program
	opts Options
	asm  modes.Assembler // each member's starts as a copy
	mux  bool

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
	stdin   *stdio.Writer  // its stdin; nil between runs
	gen     uint64         // counts the children started
	ready   chan struct{}  // closed once the child of gen runs, for writes waiting for it
	stop    chan struct{}  // closed by shutdown

	snap []*member // the fan-out's reusable snapshot of members
	ref  int       // the fan-out's: what the fastest member had queued before the last read (see pace)

	// For the metrics: messages slow members lost under DropSlow, and
	// slow members cut with 1013.
	slowDropped, slowCut atomic.Uint64

	// paceWake tells a fan-out held back by its members (see waitPace)
	// to look again: a member fell below the low-water mark, left or is
	// being closed. Sends never block.
	paceWake chan struct{}
}

// New returns the hub of a shared endpoint running p with opts (their
// defaults filled in). asm is how its members keep messages whole: the
// endpoint's budget and largest message. The child starts with Start, or
// at the first Join.
func New(host *modes.Host, p *modes.Program, opts Options, asm modes.Assembler) *Hub {
	return &Hub{
		host: host, prog: p, opts: opts, asm: asm, mux: p.Framing == framing.Mux,
		members: map[uint32]*member{}, stop: make(chan struct{}), ready: make(chan struct{}),
		paceWake: make(chan struct{}, 1),
	}
}

// Start starts the supervisor unless it runs or Serve is ending.
func (h *Hub) Start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running || h.stopped {
		return
	}
	h.running = true
	h.host.Running.Add(1) // Serve waits for the supervisor
	go h.supervise()
}

// snapshot returns the members now, in a slice the fan-out reuses: only
// the supervisor goroutine may call it.
func (h *Hub) snapshot() []*member {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshotLocked()
}

func (h *Hub) snapshotLocked() []*member {
	h.snap = h.snap[:0]
	for _, m := range h.members {
		h.snap = append(h.snap, m)
	}
	return h.snap
}

// Join adds client c to the hub as a member and starts its input pump;
// done runs once the member is gone. id names the connection in logs; env
// is what a mux child's open record carries. The client is closed at once
// if Serve is ending.
func (h *Hub) Join(c transport.Framed, id uint64, env []string, done func()) {
	m := &member{h: h, c: c, sid: id, finish: done, asm: h.asm}
	if h.mux {
		m.env = env
	}
	h.Start()
	m.prepare()
	if h.mux {
		h.inMu.Lock() // the open record goes before any of m's messages
		defer h.inMu.Unlock()
	}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		m.c.Close(transport.Shutdown.Code, transport.Shutdown.Reason)
		go m.in.Run() // reads the client's answer
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
		if !h.opts.KeepClients {
			m.env = nil // sent; a restarted child never sees this member
		}
	}
	go m.in.Run()
}

// writeOpen tells a mux child about member m; inMu is held.
func (h *Hub) writeOpen(stdin *stdio.Writer, m *member) {
	env := framing.AppendMuxEnv(nil, m.environ())
	h.writeTo(stdin, []framing.Piece{{Data: env, Kind: framing.Open, Conn: m.id, First: true, Final: true}})
}

// leave removes a member and tells a mux child that knows it that it is
// gone. code is how the client side ended.
func (h *Hub) leave(m *member, code transport.CloseCode, reason string) {
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
func (h *Hub) knowsLocked(m *member) bool { return h.stdin != nil && m.announced == h.gen }

// write sends member m's whole messages to the child's stdin. While no
// child runs (it is starting, or restarting) they wait for the next one,
// which holds the client back; they are dropped once Serve ends or m is
// being closed, and when the running child does not know m (it was the
// last child's, closed for the restart).
func (h *Hub) write(m *member, pieces []framing.Piece) {
	h.inMu.Lock()
	defer h.inMu.Unlock()
	for {
		h.mu.Lock()
		stdin, known, ready := h.stdin, h.knowsLocked(m), h.ready
		wait := stdin == nil && (h.opts.KeepClients || m.announced == 0)
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
			h.host.Log.Debug("no shared program running for this client; message dropped", "path", h.prog.Path, "id", m.sid)
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
func (h *Hub) writeTo(stdin *stdio.Writer, pieces []framing.Piece) {
	if err := stdin.Write(pieces); err != nil {
		h.host.Log.Debug("shared program not reading stdin; message dropped", "path", h.prog.Path, "err", err)
	}
}

// Shutdown stops the hub as Serve ends: every member is closed with 1001,
// and the child is ended; the supervisor then returns.
func (h *Hub) Shutdown() {
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
		m.closeNow(transport.Shutdown)
	}
}

// logf logs for a member.
func (h *Hub) logf(level slog.Level, msg string, args ...any) {
	h.host.Logf(level, msg, h.who(), args...)
}

func (h *Hub) who() []any { return []any{"path", h.prog.Path} }

// Members returns how many clients the hub has now.
func (h *Hub) Members() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.members)
}

// Mux reports whether the child speaks the mux framing: its clients'
// environments go in open records.
func (h *Hub) Mux() bool { return h.mux }

// Slow returns, for the metrics, the messages slow members have lost
// (DropSlow) and the slow members cut with 1013, since New.
func (h *Hub) Slow() (dropped, cut uint64) { return h.slowDropped.Load(), h.slowCut.Load() }

// PID returns the running child's process ID, or 0 between runs.
func (h *Hub) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return 0
	}
	return h.proc.PID
}
