package shared

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/stdio"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// supervise runs the child until Serve ends, restarting it with backoff:
// the wait doubles after each run shorter than stableRun.
func (h *Hub) supervise() {
	defer h.host.Running.Done()
	base := h.opts.RestartDelay
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
		h.host.Log.Error(msg, "path", h.prog.Path, "exit", status, "err", err, "after", delay)
		if !h.opts.KeepClients {
			for _, m := range h.snapshot() {
				m.closeAfterQueued(transport.Restart)
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
func (h *Hub) runChild() (string, error) {
	dec, enc, err := framing.New(h.prog.Framing)
	if err != nil {
		return "", err
	}
	cgi := procs.CGI{
		ServerSoftware: h.host.ServerSoftware,
		ScriptName:     h.prog.Path,
		Protocol:       "HTTP/1.1",
	}
	proc, err := procs.Start(h.host.Spec(h.prog, cgi.Environ(h.prog.PassEnv), func(line []byte) {
		h.host.Log.Warn("shared program stderr", "path", h.prog.Path, "line", string(line))
	}))
	if err != nil {
		return "", err
	}
	h.host.Forks.Add(1)
	defer h.host.Forks.Add(-1)
	stdin, err := stdio.NewWriter(proc.Stdin, enc)
	if err != nil {
		_ = proc.Terminate(h.prog.CloseGrace)
		_ = proc.Stdout.Close()
		<-proc.Done()
		return proc.Status().String(), err
	}
	h.host.Log.Info("shared program started", "path", h.prog.Path, "pid", proc.PID)

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
		if h.opts.KeepClients || !m.closing() {
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
		_ = proc.Terminate(h.prog.CloseGrace)
		_ = proc.Stdout.SetReadDeadline(time.Now())
	}()
	h.fanOut(proc, dec)
	close(fanned)
	<-watched

	// stdout is done: end the whole group as a session does. This comes
	// first: a write blocked on a stdin the child no longer reads holds
	// inMu, and only closing stdin frees it.
	if err := proc.Terminate(h.prog.CloseGrace); err != nil {
		h.host.Log.Error("shared program did not end", "path", h.prog.Path, "pid", proc.PID, "err", err)
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
func (h *Hub) fanOut(proc *procs.Process, dec framing.Decoder) {
	out := stdio.Cutter{Dec: dec, Buf: make([]byte, h.host.OutBuffer)}
	grown, held := false, false
	// A broadcast reads no more at a time than half of --queue, so that a
	// batch fits in the queue of a member that keeps up (see pace).
	most := len(out.Buf)
	if !h.mux {
		most = max(h.lowWater(), 4096)
	}
	for !out.EOF {
		if !held {
			h.waitPace(proc)
		}
		room := out.Buf[out.End:min(len(out.Buf), out.End+most)]
		var n int
		var err error
		if held {
			n, err = poll.ReadHeld(proc.Stdout, room)
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
		if n >= stdio.PipeDefault && !grown {
			grown = true
			if rc, err := proc.Stdout.SyscallConn(); err == nil {
				_ = rc.Control(stdio.GrowPipe)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				h.host.Log.Error("reading shared program stdout", "path", h.prog.Path, "err", err)
			}
			out.EOF = true
		}
		out.End += n
		if !out.Cut(h.route) {
			h.host.Log.Error("shared program output is malformed; restarting it", "path", h.prog.Path, "err", out.Err)
			return
		}
	}
}
