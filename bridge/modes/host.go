package modes

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/procs"
)

// Host is what a mode needs of the server it runs in. The Server makes
// one when Serve starts; tests may make their own.
type Host struct {
	Log    *slog.Logger
	Poller *poll.Poller // nil: readers wait in their reads, holding a goroutine

	Forks     *atomic.Int64 // children running, for --maxforks
	OutBuffer int           // the pooled buffer a child's stdout is read into

	ServerSoftware string // SERVER_SOFTWARE for children

	// Track registers a client's end for shutdown, which calls its
	// CloseClient with transport.Shutdown; a client tracked once
	// shutdown has begun is closed at once. Untrack forgets it.
	Track, Untrack func(Closer)

	// Running counts the goroutines Serve waits for besides the
	// connections' (a shared child's supervisor).
	Running *sync.WaitGroup
}

// Closer is what shutdown closes: a session, or a per-message CGI
// connection.
type Closer interface {
	CloseClient(c transport.Close)
}

// Program is the program of an endpoint and how it runs, as every mode
// starts it.
type Program struct {
	Path       string   // the endpoint's URL path, for logs
	Command    []string // program and arguments
	Dir        string   // working directory; "": the daemon's
	PassEnv    []string // daemon variables the child inherits
	Framing    string   // framing name (framing.New)
	CloseGrace time.Duration
}

// Spec is how every mode starts p: with env as its whole environment and
// each stderr line passed to stderr, read by a reader that parks while the
// program is silent.
func (h *Host) Spec(p *Program, env []string, stderr func(line []byte)) procs.Spec {
	spec := procs.Spec{Path: p.Command[0], Args: p.Command, Env: env, Dir: p.Dir, Stderr: stderr}
	if h.Poller != nil {
		spec.Parker = h.Poller
	}
	return spec
}

// Logf logs msg with the attributes of who logs it first. (A logger made
// With attributes would be kept by every idle session; this allocates
// only when it logs.)
func (h *Host) Logf(level slog.Level, msg string, who []any, args ...any) {
	if !h.Log.Enabled(context.Background(), level) {
		return
	}
	h.Log.Log(context.Background(), level, msg, append(who, args...)...)
}

// LogClose logs the line a close decision carries, if any.
func (h *Host) LogClose(c transport.Close, who []any, args ...any) {
	if c.Log != "" {
		h.Logf(c.Level, c.Log, who, args...)
	}
}
