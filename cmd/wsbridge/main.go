// Command wsbridge turns a program that speaks stdin/stdout into a
// WebSocket endpoint. It parses flags, sets up signals and calls run; only
// main exits.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/wsbridge/wsbridge/bridge"
	"github.com/wsbridge/wsbridge/bridge/unixsock"
	"github.com/wsbridge/wsbridge/procs"
)

// version is stamped by the build: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if handOver, ok := handOverCommand(os.Args, os.Getenv); ok {
		// Run by a web server as a CGI: hand the connection over, exit.
		os.Exit(handOver(os.Stderr))
	}
	// Under inetd, stdout and maybe stderr are the client's connection:
	// nothing but HTTP may reach it, not even --help.
	logOut, out := logSink(), io.Writer(os.Stdout)
	if isSocket(1) {
		out = logOut
	}
	c, err := parseFlags(os.Args[1:], out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(logOut, "wsbridge:", err)
		os.Exit(2)
	case c.version:
		fmt.Fprintln(out, "wsbridge", version)
		os.Exit(0)
	}

	if err := setMemory(c.memoryLimit, os.Getenv); err != nil {
		fmt.Fprintln(logOut, "wsbridge:", err)
		os.Exit(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	// forced is held while a second signal is acted on: killing every
	// program lets run return at once, and main must not then exit 0
	// before the exit status 1 the second signal asks for.
	var forced sync.Mutex
	go func() {
		sig := <-sigs
		slog.Info("shutting down: closing connections and ending programs (signal again to exit at once)", "signal", sig.String())
		cancel()
		sig = <-sigs
		forced.Lock()
		slog.Error("second signal: killing every program and exiting at once", "signal", sig.String())
		procs.KillAll() // their own process groups would outlive us
		os.Exit(1)
	}()

	err = run(ctx, c, logOut)
	forced.Lock() // a second signal being acted on exits first, with 1
	if err != nil {
		fmt.Fprintln(logOut, "wsbridge:", err)
		if errors.As(err, new(setupError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down cleanly.
func run(ctx context.Context, c config, logOut io.Writer) error {
	level, err := bridge.ParseLevel(c.logLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level, ReplaceAttr: levelNames}))
	slog.SetDefault(log)
	c.bridge.Logger = log
	c.bridge.ServerSoftware = "wsbridge/" + version
	logMemory(log, c.memoryLimit)

	if err := procs.ReapOrphans(); err != nil {
		log.Warn("cannot become a subreaper; orphaned grandchildren are left to init", "err", err)
	}
	srv, err := bridge.New(c.bridge)
	if err != nil {
		return err
	}
	listeners, finished, err := listen(c, log)
	if err != nil {
		return err
	}
	if finished != nil {
		// --inetd: once its one connection is done, shut down as for
		// SIGTERM; Serve still waits for the session and its child.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-finished:
				log.Debug("connection done: exiting (--inetd)")
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	for _, ep := range c.bridge.Endpoints {
		path := ep.Path
		if path == "" {
			path = "(every path)"
		}
		if ep.ScriptDir != "" {
			log.Info("endpoint", "path", path, "dir", ep.ScriptDir)
		} else {
			log.Info("endpoint", "path", path, "command", strings.Join(ep.Command, " "))
		}
	}
	redirect, err := listenRedirect(c, srv, log, listeners)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	listeners = append(listeners, redirect...)
	stopMetrics, err := serveMetrics(srv, c, log)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	watchCerts(ctx, c, log)
	err = srv.Serve(ctx, listeners...)
	stopMetrics() // only now: a scrape during the drain shows it
	// Every session has ended its program; what they left that could not
	// be told apart (a process that cleared its environment and left its
	// group) must not outlive the daemon either.
	if eerr := procs.EndAll(0); eerr != nil {
		log.Error("processes left running", "err", eerr)
	}
	return err
}

// listen returns what to serve: the connection on stdin (--inetd), the
// sockets of systemd socket activation, or new TCP listeners on --address
// and --port. finished is closed once the --inetd connection is done, nil
// otherwise.
func listen(c config, log *slog.Logger) (ls []net.Listener, finished <-chan struct{}, err error) {
	fds, err := passedFDs()
	if err != nil {
		return nil, nil, err
	}
	if c.inetd {
		if c.handover != nil {
			return nil, nil, badSetup("--inetd serves the one connection inetd passes; --handover=%s takes connections from a web server: a daemon does that, so remove --inetd", c.handover.path)
		}
		fd, from := 0, "stdin"
		if len(fds) == 1 {
			// systemd Accept=yes without StandardInput=socket passes
			// the connection as fd 3.
			if kind, listening := socketKind(fds[0].fd); kind == "" && !listening {
				fd, from = fds[0].fd, fds[0].describe()
			}
		}
		if len(fds) > 0 && fd == 0 {
			return nil, nil, badSetup("--inetd serves one connection, but socket activation passed %d listening sockets or other descriptors (Accept=no?): remove --inetd to serve them as listening sockets", len(fds))
		}
		conn, err := inetdConn(fd, from)
		if err != nil {
			return nil, nil, err
		}
		log.Info("serving one connection (--inetd)", "remote", conn.RemoteAddr().String(), "local", conn.LocalAddr().String())
		l := newOneConnListener(conn)
		return []net.Listener{l}, l.finished, nil
	}
	if c.handover != nil {
		l, err := listenHandover(c.handover, log)
		if err != nil {
			return nil, nil, err
		}
		ls = append(ls, l)
	}
	if len(fds) > 0 {
		// The .socket unit says where to listen: a --port or a
		// --unixsocket that would be silently ignored is a mistake worth
		// a word.
		var why string
		switch {
		case c.listenSet:
			why = "remove --port and --address"
		case c.unixSocket != "":
			why = "remove --unixsocket (a ListenStream=/path in the unit makes a unix socket)"
		}
		if why != "" {
			for _, l := range ls {
				l.Close()
			}
			return nil, nil, badSetup("socket activation passed %d listening sockets: the .socket unit's ListenStream= says where to listen, so %s", len(fds), why)
		}
		als, err := activatedListeners(fds, log)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
		}
		return append(ls, als...), nil, err
	}
	if c.unixSocket != "" {
		l, err := unixsock.Listen("unix", c.unixSocket, c.unixPerm)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, nil, fmt.Errorf("--unixsocket: %w", err)
		}
		ls = append(ls, l)
		log.Info("listening", "socket", c.unixSocket, "mode", fmt.Sprintf("%04o", c.unixPerm.Mode))
	}
	addrs := c.addresses
	if len(addrs) == 0 && !c.handoverOnly && !c.unixOnly {
		addrs = []string{""}
	}
	tcp, err := listenTCP(addrs, c.port, "port")
	if err != nil {
		for _, l := range ls {
			l.Close()
		}
		return nil, nil, err
	}
	scheme := "http://"
	if c.certs != nil {
		scheme = "https://"
	}
	for _, l := range tcp {
		log.Info("listening", "url", scheme+l.Addr().String()+"/")
	}
	ls = append(ls, tcp...)
	return ls, nil, nil
}

// listenTCP opens a TCP listener on port at each of addrs ("" for all),
// or none: on an error it closes those it opened. A port another program
// holds is said so, naming the flag that chooses another.
func listenTCP(addrs []string, port int, flag string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, a := range addrs {
		hostPort := net.JoinHostPort(strings.Trim(a, "[]"), strconv.Itoa(port))
		l, err := net.Listen("tcp", hostPort)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("cannot listen on %s: another program (another wsbridge?) has that port: stop it or choose another with --%s", hostPort, flag)
			}
			return nil, fmt.Errorf("cannot listen on %s: %w", hostPort, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// serveMetrics serves srv's metrics on --metrics-address, if given, until
// stop is called; stop returns once the last answer is written.
func serveMetrics(srv *bridge.Server, c config, log *slog.Logger) (stop func(), err error) {
	if c.metricsAddress == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", c.metricsAddress)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("cannot listen on %s for the metrics: another program has that port: choose another with --metrics-address", c.metricsAddress)
		}
		return nil, fmt.Errorf("cannot listen on %s for the metrics: %w", c.metricsAddress, err)
	}
	path := cmp.Or(c.metricsPath, bridge.DefaultMetricsPath)
	log.Info("metrics", "url", "http://"+l.Addr().String()+path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeMetrics(ctx, l, path); err != nil {
			log.Error("metrics no longer served", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// minMemoryLimit is the smallest --memory-limit: below it the runtime
// would collect garbage all the time for nothing.
const minMemoryLimit = 1 << 20

// setMemory sets the garbage collector for a board: collect at 50% heap
// growth unless GOGC says otherwise, and set the runtime's soft memory
// limit to limit (bytes, 0: none). GOMEMLIMIT in the environment sets the
// limit too, when the runtime starts; two limits would leave one silently
// ignored, so --memory-limit with GOMEMLIMIT is an error.
func setMemory(limit int64, getenv func(string) string) error {
	if limit > 0 && getenv("GOMEMLIMIT") != "" {
		return fmt.Errorf("--memory-limit=%d and GOMEMLIMIT=%s both set a memory limit: keep one", limit, getenv("GOMEMLIMIT"))
	}
	if getenv("GOGC") == "" {
		// Boards have less memory than CPU to spare: collect garbage
		// at 50% growth, not 100%. The hot paths allocate nothing, so
		// this costs CPU only when connections come and go.
		debug.SetGCPercent(50)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return nil
}

// logMemory logs the memory limit in force, read back from the runtime,
// and where it comes from.
func logMemory(log *slog.Logger, flag int64) {
	limit := debug.SetMemoryLimit(-1) // a negative limit reads it
	switch {
	case limit == math.MaxInt64:
		log.Info("memory", "limit", "none")
	case flag > 0:
		log.Info("memory", "limit", limit, "from", "--memory-limit")
	default:
		log.Info("memory", "limit", limit, "from", "GOMEMLIMIT")
	}
}

// levelNames prints websocketd's level names for the levels slog lacks.
func levelNames(_ []string, a slog.Attr) slog.Attr {
	if a.Key != slog.LevelKey {
		return a
	}
	switch a.Value.Any().(slog.Level) {
	case bridge.LevelDebug:
		a.Value = slog.StringValue("DEBUG")
	case bridge.LevelTrace:
		a.Value = slog.StringValue("TRACE")
	case bridge.LevelAccess:
		a.Value = slog.StringValue("ACCESS")
	case bridge.LevelFatal:
		a.Value = slog.StringValue("FATAL")
	}
	return a
}
