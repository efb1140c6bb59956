package cgi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// cgiExitGrace is how long the reply may still take once the script has
// exited: what it wrote is in the pipe by then, and a process it left
// behind may hold stdout open for good.
const cgiExitGrace = 100 * time.Millisecond

// run runs the program once for msg and makes its reply. When the reply
// is due while the script still runs (the timeout, too much output), run
// hands it to early before it ends the script, so the client hears at
// once; the slot stays taken until the script is gone.
func (c *conn) run(msg []byte, kind framing.Kind, early func(reply)) reply {
	req := c.base
	req.Method = http.MethodPost
	req.ContentLength = strconv.Itoa(len(msg))
	req.ContentType = "application/octet-stream"
	if kind == framing.Text {
		req.ContentType = "text/plain; charset=utf-8"
	}
	spec := c.host.Spec(c.prog, req.Environ(c.prog.PassEnv), func(line []byte) {
		c.logf(slog.LevelWarn, "script stderr", "line", string(line))
	})
	c.outMu.Lock()
	if c.gone {
		c.outMu.Unlock()
		return reply{none: true}
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
	c.host.Forks.Add(1)
	defer c.host.Forks.Add(-1)
	defer func() {
		c.outMu.Lock()
		delete(c.running, proc)
		c.outMu.Unlock()
	}()

	// The timeout covers the whole run: feeding stdin, reading stdout,
	// the exit. It is a deadline on both pipes, so it ends the reply at
	// the timeout whatever holds them.
	deadline := time.Now().Add(c.opts.Timeout)
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
	out, tooBig, rerr := readAtMost(proc.Stdout, c.opts.MaxOut)
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
			rest, tooBig = readReady(proc.Stdout, c.opts.MaxOut-int64(len(out)))
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
		c.logf(slog.LevelError, "script timed out", "pid", proc.PID, "timeout", c.opts.Timeout)
		early(cgiError(http.StatusGatewayTimeout, "the script ran longer than "+c.opts.Timeout.String()))
		_ = proc.Terminate(c.prog.CloseGrace)
		return reply{}
	case tooBig:
		c.logf(slog.LevelError, "script output too large", "pid", proc.PID, "limit", c.opts.MaxOut)
		early(cgiError(http.StatusBadGateway, fmt.Sprintf("the script wrote more than %d bytes", c.opts.MaxOut)))
		_ = proc.Terminate(c.prog.CloseGrace)
		return reply{}
	}
	_ = proc.Terminate(c.prog.CloseGrace) // anything left in its group, or outside it
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
		return reply{none: true} // nothing to say, as a 204 says nothing
	}
	r := reply{data: resp.Body, kind: framing.Binary}
	if resp.IsText() {
		r.kind = framing.Text
	}
	return r
}

// cgiError is the reply when a script fails: a JSON object a program can
// tell from a script's own answer and a person can read.
func cgiError(status int, detail string) reply {
	b, _ := json.Marshal(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{http.StatusText(status), status, detail})
	return reply{data: b, kind: framing.Text}
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
// poll.ReadHeld), keeping at most limit bytes; more reports that there was
// more.
func readReady(f *os.File, limit int64) (out []byte, more bool) {
	if f.SetReadDeadline(time.Time{}) != nil {
		return nil, false
	}
	buf := make([]byte, 16<<10)
	for {
		n, err := poll.ReadHeld(f, buf)
		if err != nil {
			return out, false // io.EOF: the pipe is empty
		}
		if int64(len(out)+n) > limit {
			return append(out, buf[:limit-int64(len(out))]...), true
		}
		out = append(out, buf[:n]...)
	}
}
