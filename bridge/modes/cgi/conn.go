package cgi

import (
	"log/slog"
	"sync"

	"github.com/wsbridge/wsbridge/bridge/modes"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// conn serves one connection in the per-message CGI mode (ModeCGI):
// each message the client sends runs the program once, CGI/1.1 style,
// with the message on stdin; what it prints, after an optional CGI header
// block, is the reply. Scripts of one connection run concurrently (up to
// CGIOptions.PerConn, and CGIOptions.Total for the endpoint) and their
// replies go out in the order of the messages. While all of the
// connection's slots are busy, its input pump waits: the client is not
// read, which is its backpressure.
type conn struct {
	host *modes.Host
	prog *modes.Program
	opts Options
	c    transport.Client
	in   modes.Pump
	sid  uint64
	base procs.CGI // the connection's request; Method, ContentLength, ContentType set per message
	asm  modes.Assembler
	// total bounds the scripts running at once for the endpoint (a
	// script directory's, for all its scripts).
	total chan struct{}

	slots chan struct{} // this connection's running scripts
	jobs  sync.WaitGroup
	seq   uint64 // messages received, numbering replies

	outMu   sync.Mutex // orders replies; held while one is sent
	next    uint64     // the reply due next
	ready   map[uint64]reply
	gone    bool // the client side has ended: run nothing more, kill what runs
	running map[*procs.Process]struct{}

	finish func()
}

// reply is one script's answer: a message, or nothing.
type reply struct {
	data []byte
	kind framing.Kind
	none bool
}

// Serve runs the per-message CGI mode for client cl: each message runs
// p once with the request req (Method, ContentLength and ContentType are
// set per message). total bounds the scripts running at once for the
// endpoint; asm keeps messages whole under its budget. done runs once the
// connection is done. Serve returns at once.
func Serve(h *modes.Host, p *modes.Program, opts Options, total chan struct{}, asm modes.Assembler,
	cl transport.Client, req procs.CGI, id uint64, done func()) {
	c := &conn{
		host: h, prog: p, opts: opts, total: total, c: cl, sid: id, base: req, finish: done, asm: asm,
		slots:   make(chan struct{}, opts.PerConn),
		ready:   map[uint64]reply{},
		running: map[*procs.Process]struct{}{},
	}
	h.InitPump(&c.in, cl, c)
	h.Track(c) // shutdown closes the client like a session's
	go c.in.Run()
}

// CloseClient closes the client side; the input pump then ends the
// scripts that run.
func (c *conn) CloseClient(cl transport.Close) {
	_ = c.c.Close(cl.Code, cl.Reason)
}

// EndIn runs once the client side has ended: nobody will read a reply.
func (c *conn) EndIn(error) {
	c.c.Close(transport.ClientLeft.Code, transport.ClientLeft.Reason)
	c.outMu.Lock()
	c.gone = true
	for p := range c.running {
		c.jobs.Add(1)
		go func() {
			defer c.jobs.Done()
			_ = p.Terminate(c.prog.CloseGrace)
		}()
	}
	c.outMu.Unlock()
	c.jobs.Wait()
	c.asm.Release()
	c.host.Untrack(c)
	c.finish()
}

// DeliverIn starts a script for each whole message. A message is copied
// for its script into a buffer charged to the endpoint's assembly budget
// until the script has run; a client whose message does not fit is
// closed with 1013.
func (c *conn) DeliverIn(pieces []framing.Piece) error {
	full := false
	err := c.asm.Feed(pieces, func(whole []framing.Piece) {
		for _, p := range whole {
			if full {
				return
			}
			msg := c.asm.Budget.Get(len(p.Data))
			if msg == nil {
				full = true
				return
			}
			copy(msg, p.Data)
			c.start(msg, p.Kind)
		}
	})
	if full {
		err = transport.ErrBudget
	}
	if err != nil {
		cl := transport.ForError(err)
		c.host.LogClose(cl, c.who(), "held", c.asm.Budget.Held(), "limit", c.asm.Budget.Limit)
		return c.c.Fail(err)
	}
	return nil
}

// start runs a script for one message once a slot of the connection and
// one of the endpoint are free, waiting for them: while it waits, the
// client is not read. msg is the script's, from the assembly budget, and
// goes back once the script has run.
func (c *conn) start(msg []byte, kind framing.Kind) {
	seq := c.seq
	c.seq++
	c.slots <- struct{}{}
	c.total <- struct{}{}
	c.jobs.Add(1)
	go func() {
		defer c.jobs.Done()
		sent := false
		r := c.run(msg, kind, func(r reply) { c.send(seq, r); sent = true })
		// run has waited for the writer of the script's stdin, on every
		// path (the timeout's too): msg is no longer read.
		c.asm.Budget.Put(msg)
		<-c.total
		<-c.slots
		if !sent {
			c.send(seq, r)
		}
	}()
}

// send stores reply seq and sends every reply that is now due, in
// order, on whichever goroutine completes the sequence.
func (c *conn) send(seq uint64, r reply) {
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
		if err := c.c.Send([]framing.Piece{{Data: r.data, Kind: r.kind, First: true, Final: true}}); err != nil {
			c.gone = true
		}
	}
}

func (c *conn) logf(level slog.Level, msg string, args ...any) {
	c.host.Logf(level, msg, c.who(), args...)
}

func (c *conn) who() []any { return []any{"id", c.sid, "path", c.prog.Path} }
