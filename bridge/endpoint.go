package bridge

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// Mode says how an endpoint's program serves its clients.
type Mode uint8

const (
	// ModeProcess runs one child per connection, for the connection's
	// life (websocketd's way). The zero value.
	ModeProcess Mode = iota
	// ModeShared runs one long-lived child for every connection of the
	// endpoint (--shared): what it writes goes to every client, or, with
	// the mux framing, to the client it names.
	ModeShared
	// ModeCGI runs the program once per incoming message, CGI-style
	// (--cgi-per-message): the message on stdin, the reply on stdout.
	ModeCGI
)

// String returns the mode's flag spelling.
func (m Mode) String() string {
	switch m {
	case ModeShared:
		return "shared"
	case ModeCGI:
		return "cgi-per-message"
	}
	return "process"
}

// Endpoint is one WebSocket endpoint: the program behind a URL path and how
// it runs. Exactly one of Command and ScriptDir is required; the zero value
// of every other field is a sound default.
type Endpoint struct {
	// Path is the URL path served: "/chat" serves /chat and every path
	// below it (/chat/room1: the rest is PATH_INFO). "" serves every
	// path no other endpoint serves, as websocketd's single program does.
	Path string

	Command []string // program and arguments
	Dir     string   // the program's working directory; "": the daemon's (ScriptDir: the script's)
	Framing string   // how messages travel on stdio: "line" (default), "raw", "len32", "mux" (shared only)
	PassEnv []string // daemon variables the child inherits; nil: none
	Mode    Mode

	// ScriptDir, instead of Command, serves every executable file of a
	// directory (--dir): /x.sh/more below Path runs ScriptDir/x.sh with
	// PATH_INFO /more, in the script's own directory. The script is found
	// at each request, so scripts may come and go; hidden files, symbolic
	// links leading out of the directory and ".." are refused with 404.
	ScriptDir string

	MaxMessage int64 // largest message from a client; 0: 1 MiB; <0: no limit
	// AssemblyBudget bounds the bytes all clients of the endpoint
	// together may hold in messages the shared and CGI modes keep whole
	// (still arriving in fragments, or waiting for a script); a client
	// whose message does not fit is closed with 1013. 0: 8 MiB, or
	// MaxMessage if larger. It must not be below MaxMessage.
	AssemblyBudget int64
	CloseGrace     time.Duration // --closems: stretches each wait of the termination ladder

	Shared SharedOptions // ModeShared only
	CGI    CGIOptions    // ModeCGI only
}

// SharedOptions tune a shared child (ModeShared).
type SharedOptions struct {
	// Lazy starts the child at the first connection rather than with
	// Serve.
	Lazy bool
	// KeepClients keeps clients connected while the child restarts; by
	// default they are closed with 1012 (service restart) and may
	// reconnect.
	KeepClients bool
	// Queue is how far a client may fall behind the fastest: while
	// every client has half of it or more waiting, the child's output is
	// not read (the child waits); a client more than Queue behind the
	// fastest, or that takes nothing for 5s while it holds the others
	// back, is slow. With the mux framing, a client with more than Queue
	// waiting is slow. 0: 256 KiB.
	Queue int
	// DropSlow drops whole messages for a slow client rather than
	// disconnecting it with 1013; it then no longer holds the child back
	// until it reads again.
	DropSlow bool
	// RestartDelay is the first wait before restarting a child that
	// exited; it doubles at each quick exit, up to 30 times it. 0: 100ms.
	RestartDelay time.Duration
}

// CGIOptions tune per-message CGI (ModeCGI).
type CGIOptions struct {
	PerConn int           // scripts running at once for one connection; 0: 4
	Total   int           // scripts running at once for the endpoint; 0: 64
	Timeout time.Duration // a script running longer is killed; 0: 30s
	MaxOut  int64         // largest reply (stdout) of a script; 0: 1 MiB
}

// withDefaults checks ep and fills in its defaults.
func (ep Endpoint) withDefaults() (Endpoint, error) {
	name := ep.Path
	if name == "" {
		name = "(every path)"
	}
	fail := func(format string, args ...any) (Endpoint, error) {
		return ep, fmt.Errorf("endpoint %s: %s", name, fmt.Sprintf(format, args...))
	}
	switch {
	case ep.ScriptDir != "" && len(ep.Command) > 0:
		return fail("a program and a script directory: give one")
	case ep.ScriptDir != "":
		if err := ep.checkScriptDir(); err != nil {
			return fail("%v", err)
		}
	case len(ep.Command) == 0 || ep.Command[0] == "":
		return fail("no program to run")
	}
	if ep.Path != "" && (!strings.HasPrefix(ep.Path, "/") || strings.Contains(ep.Path, "?") || strings.Contains(ep.Path, "#")) {
		return fail("path must start with / and hold no query")
	}
	ep.Path = strings.TrimSuffix(ep.Path, "/")
	if ep.Path == "" && name != "(every path)" {
		ep.Path = "/"
	}
	if ep.Framing == "" {
		ep.Framing = "line"
	}
	if _, _, err := framing.New(ep.Framing); err != nil {
		return fail("%v", err)
	}
	switch ep.Mode {
	case ModeProcess, ModeShared, ModeCGI:
	default:
		return fail("unknown mode %d", ep.Mode)
	}
	if ep.Framing == "mux" && ep.Mode != ModeShared {
		return fail("the mux framing needs the shared mode (--shared): it addresses the clients of one child")
	}
	if ep.Mode == ModeCGI && ep.Framing != "line" {
		return fail("--cgi-per-message takes no --framing: each message is the whole of the script's stdin")
	}
	switch {
	case ep.MaxMessage == 0:
		ep.MaxMessage = 1 << 20
	case ep.MaxMessage < 0 && ep.Mode != ModeProcess:
		return fail("--max-message must be set in the %s mode: messages are held whole there", ep.Mode)
	case ep.MaxMessage < 0:
		ep.MaxMessage = 0
	}
	switch {
	case ep.AssemblyBudget < 0:
		return fail("limits must not be negative")
	case ep.AssemblyBudget == 0:
		ep.AssemblyBudget = max(defaultAssemblyBudget, ep.MaxMessage)
	case ep.AssemblyBudget < ep.MaxMessage && ep.Mode != ModeProcess:
		return fail("--assembly-budget (%d) must be at least --max-message (%d): a message is held whole", ep.AssemblyBudget, ep.MaxMessage)
	}
	if ep.CloseGrace < 0 || ep.Shared.RestartDelay < 0 || ep.CGI.Timeout < 0 {
		return fail("durations must not be negative")
	}
	if ep.Shared.Queue < 0 || ep.CGI.PerConn < 0 || ep.CGI.Total < 0 || ep.CGI.MaxOut < 0 {
		return fail("limits must not be negative")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&ep.Shared.Queue, 256<<10)
	def(&ep.CGI.PerConn, 4)
	def(&ep.CGI.Total, 64)
	if ep.Shared.RestartDelay == 0 {
		ep.Shared.RestartDelay = 100 * time.Millisecond
	}
	if ep.CGI.Timeout == 0 {
		ep.CGI.Timeout = 30 * time.Second
	}
	if ep.CGI.MaxOut == 0 {
		ep.CGI.MaxOut = 1 << 20
	}
	return ep, nil
}

// endpoint is an Endpoint at run time: its settings and the state its
// mode keeps across connections.
type endpoint struct {
	Endpoint
	wscfg   wsConfig
	hub     *hub       // ModeShared: the shared child and its clients
	scripts *scriptDir // ScriptDir only: the endpoint of each script found

	cgiSlots chan struct{}   // ModeCGI: the endpoint's running scripts
	assembly *assemblyBudget // ModeShared and ModeCGI: what clients' whole messages may hold
}

// defaultAssemblyBudget lets eight clients hold a 1 MiB message each:
// enough for real clients, and little on a 32 MiB board.
const defaultAssemblyBudget = 8 << 20

// assembler returns the message assembler of one client of ep.
func (ep *endpoint) assembler() assembler {
	return assembler{budget: ep.assembly, max: ep.MaxMessage}
}

// routes finds the endpoint for a request path: the longest Path that is
// the request's path or a parent of it, else the catch-all.
type routes struct {
	byPath   []*endpoint // longest Path first
	catchAll *endpoint   // Path "": nil when every endpoint has a path
}

func newRoutes(eps []*endpoint) (routes, error) {
	var r routes
	seen := map[string]bool{}
	for _, ep := range eps {
		if seen[ep.Path] {
			if ep.Path == "" {
				return r, errors.New("more than one endpoint serves every path")
			}
			return r, fmt.Errorf("two endpoints at %s", ep.Path)
		}
		seen[ep.Path] = true
		if ep.Path == "" {
			r.catchAll = ep
			continue
		}
		r.byPath = append(r.byPath, ep)
	}
	sort.SliceStable(r.byPath, func(i, j int) bool { return len(r.byPath[i].Path) > len(r.byPath[j].Path) })
	return r, nil
}

// find returns the endpoint for path with the SCRIPT_NAME and PATH_INFO it
// gives the program, or nil.
func (r routes) find(path string) (ep *endpoint, script, info string) {
	for _, ep := range r.byPath {
		if ep.Path == "/" {
			return ep, "", path // mounted at the root: the whole path is PATH_INFO
		}
		if rest, ok := strings.CutPrefix(path, ep.Path); ok && (rest == "" || rest[0] == '/') {
			return ep, ep.Path, rest
		}
	}
	if r.catchAll != nil {
		return r.catchAll, path, ""
	}
	return nil, "", ""
}

// childSpec is how every mode starts the endpoint's program: with env as
// its whole environment and each stderr line passed to stderr, read by a
// reader that parks while the program is silent.
func (s *Server) childSpec(ep *endpoint, env []string, stderr func(line []byte)) procs.Spec {
	spec := procs.Spec{Path: ep.Command[0], Args: ep.Command, Env: env, Dir: ep.Dir, Stderr: stderr}
	if s.poller != nil {
		spec.Parker = s.poller
	}
	return spec
}
