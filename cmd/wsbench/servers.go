package main

// The servers under test: how each is built, started on a free loopback
// port, checked for readiness and stopped by its PID.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// variant is one server configuration a scenario measures.
type variant struct {
	name   string // in progress lines
	column string // the table column it reports in
	binary bool   // its clients send binary messages (len32), not lines
	tls    bool   // it serves wss with the run's certificate; its clients dial TLS
	argv   func(b binaries, port int) []string
	// prepare, when not nil, writes what the process reads at start for
	// the port it gets (boa takes its port from its config file only).
	prepare func(port int) error
	// sender, when not nil, is the hand-over program boa runs in front of
	// this daemon: clients connect to boa, not to the daemon.
	sender *sender
}

// binaries are the programs the variants run.
type binaries struct {
	wsbridge   string // "" when not built
	baseline   string // a second wsbridge to compare with; "" without -baseline
	websocketd string // "" when not installed
	self       string // this program, for the floor server
	dir        string // the run's temp dir: logs, hand-over sockets, boa's files
	cert, key  string // the run's self-signed pair, for the wss variants (see newTLS)
	handover          // boa and the hand-over senders; "" where missing
}

// Column names.
const (
	colWsbridge   = "wsbridge"
	colWebsocketd = "websocketd"
	colFloor      = "floor"
	colBaseline   = "baseline" // only with -baseline; not a -servers name
)

// columns are the names -servers takes. The baseline column is not one:
// it is measured wherever wsbridge is, or the ratio would mean nothing.
var columns = []string{colWsbridge, colWebsocketd, colFloor}

var (
	vWsbridge = &variant{name: "wsbridge", column: colWsbridge, argv: func(b binaries, port int) []string {
		return []string{b.wsbridge, "--port=" + strconv.Itoa(port), "--address=127.0.0.1", "/bin/cat"}
	}}
	vWsbridgeLen32 = &variant{name: "wsbridge len32", column: colWsbridge, binary: true, argv: func(b binaries, port int) []string {
		return []string{b.wsbridge, "--port=" + strconv.Itoa(port), "--address=127.0.0.1", "--framing=len32", "/bin/cat"}
	}}
	vWebsocketd = &variant{name: "websocketd", column: colWebsocketd, argv: func(b binaries, port int) []string {
		return []string{b.websocketd, "--port=" + strconv.Itoa(port), "--address=127.0.0.1", "cat"}
	}}
	vFloor = &variant{name: "floor", column: colFloor, argv: func(b binaries, port int) []string {
		return []string{b.self, "-serve-floor", "-port", strconv.Itoa(port)}
	}}
	// The wss variants: the plain ones with websocketd's TLS flags, which
	// wsbridge takes too.
	vWsbridgeWSS   = wssOf(vWsbridge)
	vWebsocketdWSS = wssOf(vWebsocketd)
)

// wssOf is v serving wss: the same command line with --ssl, --sslcert
// and --sslkey after the program's name, before its own flags.
func wssOf(v *variant) *variant {
	return &variant{name: v.name + " wss", column: v.column, binary: v.binary, tls: true, argv: func(b binaries, port int) []string {
		argv := v.argv(b, port)
		return append([]string{argv[0], "--ssl", "--sslcert=" + b.cert, "--sslkey=" + b.key}, argv[1:]...)
	}}
}

// baselineTwins maps each wsbridge variant to the same configuration run
// with the -baseline binary, so that old and new differ only in binary.
var baselineTwins = map[*variant]*variant{
	vWsbridge:          baselineTwin(vWsbridge),
	vWsbridgeLen32:     baselineTwin(vWsbridgeLen32),
	vWsbridgeShared:    baselineTwin(vWsbridgeShared),
	vWsbridgeBroadcast: baselineTwin(vWsbridgeBroadcast),
	vWsbridgeWSS:       baselineTwin(vWsbridgeWSS),
}

func baselineTwin(v *variant) *variant {
	return &variant{
		name:   strings.Replace(v.name, colWsbridge, colBaseline, 1),
		column: colBaseline,
		binary: v.binary,
		tls:    v.tls,
		argv: func(b binaries, port int) []string {
			b.wsbridge = b.baseline
			return v.argv(b, port)
		},
	}
}

// server is one running server process.
type server struct {
	v    *variant
	cmd  *exec.Cmd
	pid  int
	addr string      // 127.0.0.1:PORT
	tls  *tls.Config // its clients', when it serves wss; else nil
	log  string      // the file its stdout and stderr go to
	done chan struct{}
}

// target is where the server's clients connect.
func (s *server) target() target {
	return target{addr: s.addr, tls: s.tls}
}

// fleet starts servers and stops every one still running when the
// benchmark ends, however it ends.
type fleet struct {
	bins binaries
	dir  string      // logs
	tls  *tls.Config // the wss clients', trusting bins.cert; nil: no wss variant runs
	mu   sync.Mutex
	live map[int]*server
	n    int
}

func newFleet(bins binaries, dir string, clientTLS *tls.Config) *fleet {
	return &fleet{bins: bins, dir: dir, tls: clientTLS, live: map[int]*server{}}
}

// start runs v on a free port and waits until it accepts connections. A
// port another process took in the meantime is retried on a new one; a
// server that exits with status 2, its usage error, is not retried.
func (f *fleet) start(ctx context.Context, v *variant) (*server, error) {
	if v.tls && f.tls == nil {
		return nil, fmt.Errorf("%s serves wss, and the run has no certificate", v.name)
	}
	var err error
	for range 3 {
		var s *server
		if s, err = f.startOnce(v); err == nil {
			if err = s.waitReady(ctx, 10*time.Second); err == nil {
				return s, nil
			}
			f.stop(s)
			if ee := (*exitError)(nil); errors.As(err, &ee) && ee.status == 2 {
				return nil, err
			}
		}
	}
	return nil, err
}

// exitError is a server that exited before it listened.
type exitError struct {
	name   string
	status int    // its exit status; -1 when a signal ended it
	log    string // the end of its output
}

func (e *exitError) Error() string {
	return fmt.Sprintf("%s exited at start (status %d): %s", e.name, e.status, e.log)
}

func (f *fleet) startOnce(v *variant) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.n++
	logPath := filepath.Join(f.dir, fmt.Sprintf("%03d-%s.log", f.n, filepath.Base(v.argv(f.bins, 0)[0])))
	f.mu.Unlock()
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own copy
	if v.prepare != nil {
		if err := v.prepare(port); err != nil {
			return nil, fmt.Errorf("preparing %s: %w", v.name, err)
		}
	}
	argv := v.argv(f.bins, port)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A process group of its own: Ctrl-C reaches the benchmark only, which
	// then stops each server in order. Pdeathsig covers the benchmark being
	// killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", v.name, err)
	}
	s := &server{v: v, cmd: cmd, pid: cmd.Process.Pid, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		log: logPath, done: make(chan struct{})}
	if v.tls {
		s.tls = f.tls
	}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	f.mu.Lock()
	f.live[s.pid] = s
	f.mu.Unlock()
	return s, nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server binds it; start retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the port until the server accepts a connection.
func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-s.done:
			// Wait has filled ProcessState before done closed.
			return &exitError{name: s.v.name, status: s.cmd.ProcessState.ExitCode(), log: logTail(s.log)}
		default:
		}
		c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s not listening on %s after %v", s.v.name, s.addr, timeout)
}

// stop ends a server by its PID. The clients are gone by then, so it first
// gives the server time to end its children itself (an orphaned cat would
// be left to init); then SIGTERM, and SIGKILL if that is not enough.
func (f *fleet) stop(s *server) {
	f.mu.Lock()
	delete(f.live, s.pid)
	f.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	for deadline := time.Now().Add(2 * time.Second); children(s.pid) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(s.pid, syscall.SIGTERM)
	select {
	case <-s.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
	<-s.done
}

// stopAll stops every server still running, one by one, by PID.
func (f *fleet) stopAll() {
	f.mu.Lock()
	var all []*server
	for _, s := range f.live {
		all = append(all, s)
	}
	f.mu.Unlock()
	for _, s := range all {
		f.stop(s)
	}
}

// logTail returns the end of a server's log, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "(no output)"
	}
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}

// buildWsbridge builds cmd/wsbridge into dir the way a release is built.
// It needs the module's source: run wsbench inside the repository or give
// -wsbridge.
func buildWsbridge(ctx context.Context, dir string) (string, error) {
	return buildWsbridgeFor(ctx, dir, "wsbridge")
}

// buildWsbridgeFor builds cmd/wsbridge as dir/name with env added to the
// environment: GOARCH=arm for another machine.
func buildWsbridgeFor(ctx context.Context, dir, name string, env ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "github.com/wsbridge/wsbridge/cmd/wsbridge")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), append([]string{"CGO_ENABLED=0"}, env...)...)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wsbridge %s (run inside the repository, or pass -wsbridge PATH): %w", strings.Join(env, " "), err)
	}
	return out, nil
}

// findWebsocketd returns the websocketd to compare with: path if it
// exists, else one on $PATH. "" means it is not installed.
func findWebsocketd(path string) string {
	if path != "" {
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			return path
		}
	}
	if p, err := exec.LookPath("websocketd"); err == nil {
		return p
	}
	return ""
}

var errNoWebsocketd = errors.New("websocketd is not installed (apt-get install -y websocketd)")
