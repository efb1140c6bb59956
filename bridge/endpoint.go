package bridge

import (
	"fmt"
	"strings"
	"time"

	"github.com/wsbridge/wsbridge/bridge/modes"
	"github.com/wsbridge/wsbridge/bridge/modes/cgi"
	"github.com/wsbridge/wsbridge/bridge/modes/shared"
	"github.com/wsbridge/wsbridge/bridge/wsconn"
	"github.com/wsbridge/wsbridge/framing"
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

	MaxMessage int64 // largest message from a client; 0: 1 MiB; NoLimit (or any <0): none
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

// NoLimit, as Endpoint.MaxMessage, lets a client's messages be of any
// size (the per-connection mode only: the others hold messages whole). The
// zero value is a bound, 1 MiB, so that an Endpoint left unset is safe;
// the daemon's --max-message=0 means NoLimit.
const NoLimit = -1

// SharedOptions tune a shared child (ModeShared); see shared.Options.
type SharedOptions = shared.Options

// CGIOptions tune per-message CGI (ModeCGI); see cgi.Options.
type CGIOptions = cgi.Options

// withDefaults checks ep and fills in its defaults.
func (ep Endpoint) withDefaults() (Endpoint, error) {
	name := ep.Path
	if name == "" {
		name = "(every path)"
	}
	fail := func(format string, args ...any) (Endpoint, error) {
		return ep, fmt.Errorf("endpoint %s: %w", name, fmt.Errorf(format, args...))
	}
	switch {
	case ep.ScriptDir != "" && len(ep.Command) > 0:
		return fail("a program and a script directory: give one")
	case ep.ScriptDir != "":
		if err := ep.checkScriptDir(); err != nil {
			return fail("%w", err)
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
		ep.Framing = framing.Line
	}
	if _, _, err := framing.New(ep.Framing); err != nil {
		return fail("%w", err)
	}
	switch ep.Mode {
	case ModeProcess, ModeShared, ModeCGI:
	default:
		return fail("unknown mode %d", ep.Mode)
	}
	if ep.Framing == framing.Mux && ep.Mode != ModeShared {
		return fail("the mux framing needs the shared mode (--shared): it addresses the clients of one child")
	}
	if ep.Mode == ModeCGI && ep.Framing != framing.Line {
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
	prog    modes.Program
	ws      wsconn.Config
	hub     *shared.Hub // ModeShared: the shared child and its clients
	scripts *scriptDir  // ScriptDir only: the endpoint of each script found

	cgiSlots chan struct{} // ModeCGI: the endpoint's running scripts
	budget   *modes.Budget // ModeShared and ModeCGI: what clients' whole messages may hold
}

// defaultAssemblyBudget lets eight clients hold a 1 MiB message each:
// enough for real clients, and little on a 32 MiB board.
const defaultAssemblyBudget = 8 << 20

// assembler returns the message assembler of one client of ep.
func (ep *endpoint) assembler() modes.Assembler {
	return modes.Assembler{Budget: ep.budget, Max: ep.MaxMessage}
}

// newEndpoint returns the run-time state of e, a checked Endpoint. A script
// directory makes one for each script it finds, the same way, with itself
// as dir: its scripts share its budget and its CGI slots.
func (s *Server) newEndpoint(e Endpoint, dir *endpoint) *endpoint {
	ep := &endpoint{Endpoint: e,
		prog: modes.Program{Path: e.Path, Command: e.Command, Dir: e.Dir, PassEnv: e.PassEnv,
			Framing: e.Framing, CloseGrace: e.CloseGrace},
		ws: wsconn.Config{
			MaxMessage:   e.MaxMessage,
			ReadBuffer:   s.opts.ReadBuffer,
			PingInterval: s.opts.PingInterval,
			PingTimeout:  s.opts.PingTimeout,
			CloseTimeout: s.opts.CloseTimeout,
		}}
	switch {
	case dir != nil:
		ep.budget, ep.cgiSlots = dir.budget, dir.cgiSlots
	case e.Mode == ModeCGI:
		ep.cgiSlots = make(chan struct{}, e.CGI.Total)
		fallthrough
	case e.Mode != ModeProcess:
		ep.budget = &modes.Budget{Limit: e.AssemblyBudget}
	}
	switch {
	case e.ScriptDir != "":
		ep.scripts = newScriptDir(ep, s.newEndpoint) // each script has its own hub
	case e.Mode == ModeShared:
		ep.hub = shared.New(s.host, &ep.prog, e.Shared, ep.assembler())
	}
	return ep
}
