package main

// --inetd and systemd socket activation, run by the real programs that
// start wsbridge that way: xinetd (with the recipe of
// examples/deploy/inetd/) and systemd-socket-activate, on loopback.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

// pidChild writes a program that says its PID, echoes one line and exits
// 3: what reaches the client tells which process served it, and how the
// child's end is reported.
func pidChild(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pid-child")
	script := "#!/bin/sh\necho \"pid $$\"\nread line && echo \"got $line\"\nexit 3\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// wsSession is one client of pidChild through the server at addr.
type wsSession struct {
	c      *wstest.Conn
	child  proctest.Stat
	bridge proctest.Stat // the wsbridge that runs the child
}

// openSession upgrades c (a fresh connection to addr, or one that carried
// plain requests) and reads the child's PID.
func openSession(t *testing.T, c *wstest.Conn) *wsSession {
	t.Helper()
	resp, err := c.Upgrade(wstest.Options{})
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_, data, _, err := c.ReadMessage(10 * time.Second)
	if err != nil {
		t.Fatalf("reading the child's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(string(data), "pid "))
	if err != nil {
		t.Fatalf("first message %q, want pid N", data)
	}
	child := proctest.MustStat(t, pid) // it waits for a line: still there
	return &wsSession{c: c, child: child, bridge: proctest.MustStat(t, child.PPID)}
}

// echoThenExit sends a line, reads it back, and expects the close the
// child's exit 3 makes: 1011 saying the status.
func (s *wsSession) echoThenExit(t *testing.T) {
	t.Helper()
	if err := s.c.WriteMessage(wstest.OpText, []byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	_, data, _, err := s.c.ReadMessage(10 * time.Second)
	if err != nil || string(data) != "got hello" {
		t.Fatalf("echo: %q %v, want \"got hello\"", data, err)
	}
	closed, err := s.c.AnswerClose(10 * time.Second)
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	if closed.CloseCode() != 1011 || !strings.Contains(closed.CloseReason(), "3") {
		t.Errorf("close %d %q, want 1011 saying the child exited with 3", closed.CloseCode(), closed.CloseReason())
	}
}

// exeOf is the program process pid runs.
func exeOf(pid int) string {
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return exe
}

// plainGets sends n kept-alive GETs of / on c; each must be answered 200.
func plainGets(t *testing.T, c *wstest.Conn, n int) {
	t.Helper()
	for i := range n {
		resp, err := c.Request("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "")
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("plain GET %d: %v %v, want 200 kept alive", i+1, resp, err)
		}
	}
}

// waitNoChildren waits until ppid has no children left.
func waitNoChildren(t *testing.T, ppid int) {
	t.Helper()
	proctest.WaitChildren(t, ppid, 0, 10*time.Second)
}

// daemon is a program that starts wsbridge (xinetd,
// systemd-socket-activate).
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's, once done is closed
}

func (d *daemon) PID() int { return d.cmd.Process.Pid }

// runDaemon starts argv and stops it by its PID at the end.
func runDaemon(t *testing.T, log *wstest.Buffer, argv ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", argv[0], log.String())
		}
	})
	return d
}

func dialAddr(t *testing.T, addr string) *wstest.Conn {
	t.Helper()
	c, err := wstest.DialTCP(addr, wstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

// inetdConfig writes the wsbridge config file the inetd tests serve:
// pidChild at every path, and a page for plain GETs.
func inetdConfig(t *testing.T, dir string) string {
	t.Helper()
	conf := filepath.Join(dir, "wsbridge.conf")
	if err := os.WriteFile(conf, []byte("devconsole = yes\n[endpoint]\ncommand = "+pidChild(t)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// localRecipe returns a recipe of examples/deploy/inetd/ as shipped, but
// for where things are and who runs them: each old string must be there.
func localRecipe(t *testing.T, name string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/deploy/inetd/" + name)
	if err != nil {
		t.Fatal(err)
	}
	recipe := string(b)
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(recipe, replace[i]) {
			t.Fatalf("the recipe %s no longer has %q: update this test", name, replace[i])
		}
		recipe = strings.ReplaceAll(recipe, replace[i], replace[i+1])
	}
	return recipe
}

// waitFor polls until have() holds, failing after 10s with what.
func waitFor(t *testing.T, what string, have func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !have(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// TestInetd runs the recipes of examples/deploy/inetd/ under xinetd and
// openbsd-inetd: each connection is a wsbridge of its own, which serves a
// whole session and exits, leaving nothing behind.
func TestInetd(t *testing.T) {
	t.Run("xinetd", func(t *testing.T) {
		// Debian's xinetd and openbsd-inetd conflict: make test-deps
		// installs openbsd-inetd, whose inetd.conf BusyBox's inetd reads
		// too; this runs where xinetd is installed instead.
		xinetd := "/usr/sbin/xinetd"
		if _, err := os.Stat(xinetd); err != nil {
			t.Skip("SKIPPING: no /usr/sbin/xinetd (it conflicts with openbsd-inetd, which make test-deps installs): apt-get install xinetd to run this")
		}
		dir := t.TempDir()
		port := freePort(t)
		logPath := filepath.Join(dir, "xinetd.log")
		service := localRecipe(t, "wsbridge.xinetd",
			"= /usr/bin/wsbridge\n", "= "+bridgeBin+"\n",
			"/etc/wsbridge.conf", inetdConfig(t, dir),
			"= 8080\n", fmt.Sprintf("= %d\n\tbind\t\t= 127.0.0.1\n", port),
			"= wsbridge\n", "= root\n", // the test's files are the test's own
			"\n}", "\n\tlog_type\t= FILE "+logPath+"\n}")
		confPath := filepath.Join(dir, "xinetd.conf")
		if err := os.WriteFile(confPath, []byte(service), 0o644); err != nil {
			t.Fatal(err)
		}
		var out wstest.Buffer
		xi := runDaemon(t, &out, xinetd, "-dontfork", "-f", confPath, "-filelog", logPath, "-pidfile", filepath.Join(dir, "pid"))
		xlog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("xinetd log:\n%s", xlog())
			}
		})
		waitFor(t, "xinetd did not start", func() bool { return strings.Contains(xlog(), "Started working") })
		inetdSessions(t, fmt.Sprintf("127.0.0.1:%d", port), xi.PID(), func(t *testing.T, pid int) {
			// xinetd's log says how wsbridge exited.
			want := fmt.Sprintf("EXIT: wsbridge status=0 pid=%d", pid)
			waitFor(t, "xinetd's log has no "+want, func() bool { return strings.Contains(xlog(), want) })
		})
	})
	t.Run("openbsd-inetd", func(t *testing.T) {
		inetd := needTool(t, "/usr/sbin/inetd", "apt-get install openbsd-inetd")
		dir := t.TempDir()
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		line := localRecipe(t, "inetd.conf",
			"\n8080\t", "\n"+addr+"\t",
			"\twsbridge\t/usr/bin/wsbridge\t", "\troot\t"+bridgeBin+"\t",
			"/etc/wsbridge.conf", inetdConfig(t, dir))
		confPath := filepath.Join(dir, "inetd.conf")
		if err := os.WriteFile(confPath, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		var out wstest.Buffer
		// -d: in the foreground, logging to stderr.
		d := runDaemon(t, &out, inetd, "-d", confPath)
		waitFor(t, "inetd did not start", func() bool { return strings.Contains(out.String(), "ADD: "+addr) })
		inetdSessions(t, addr, d.PID(), func(t *testing.T, pid int) {
			want := fmt.Sprintf("%d reaped, status 0\n", pid)
			waitFor(t, "inetd's log has no "+want, func() bool { return strings.Contains(out.String(), want) })
		})
	})
}

// inetdSessions runs sessions through an inetd (PID daemon) serving
// pidChild on addr. exited checks the daemon saw wsbridge pid exit 0.
func inetdSessions(t *testing.T, addr string, daemon int, exited func(t *testing.T, pid int)) {
	t.Run("kept alive then a session", func(t *testing.T) {
		c := dialAddr(t, addr)
		plainGets(t, c, 2)
		s := openSession(t, c)
		if exeOf(s.bridge.PID) != bridgeBin || s.bridge.PPID != daemon {
			t.Fatalf("child's parent %d runs %q with parent %d, want wsbridge started by inetd (%d)", s.bridge.PID, exeOf(s.bridge.PID), s.bridge.PPID, daemon)
		}
		s.echoThenExit(t)
		proctest.WaitGone(t, 10*time.Second, s.bridge)
		exited(t, s.bridge.PID)
	})
	t.Run("two connections, two processes", func(t *testing.T) {
		a, b := openSession(t, dialAddr(t, addr)), openSession(t, dialAddr(t, addr))
		if a.bridge.PID == b.bridge.PID {
			t.Fatalf("both sessions in wsbridge %d, want one wsbridge each", a.bridge.PID)
		}
		for _, s := range []*wsSession{a, b} {
			s.echoThenExit(t)
		}
		proctest.WaitGone(t, 10*time.Second, a.bridge, b.bridge)
		waitNoChildren(t, daemon)
	})
	t.Run("client goes away", func(t *testing.T) {
		s := openSession(t, dialAddr(t, addr))
		s.c.Conn.Close() // no close frame: the TCP connection just ends
		proctest.WaitGone(t, 10*time.Second, s.child, s.bridge)
		waitNoChildren(t, daemon)
	})
}

// socketActivate starts systemd-socket-activate listening on a free
// loopback port with args (its options, then wsbridge's command line),
// and returns the address.
func socketActivate(t *testing.T, log *wstest.Buffer, args ...string) (string, *daemon) {
	t.Helper()
	ssa := needTool(t, "/usr/bin/systemd-socket-activate", "apt-get install systemd")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := runDaemon(t, log, append([]string{ssa, "-l", addr}, args...)...)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "Listening on"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate did not listen:\n%s", log.String())
		}
	}
	return addr, cmd
}

// TestSocketActivationAcceptNo: one wsbridge on systemd's listening
// socket serves every connection, as a daemon does on its own port.
func TestSocketActivationAcceptNo(t *testing.T) {
	var log wstest.Buffer
	// --passenv: were the LISTEN_ variables left set, the child would
	// inherit them.
	addr, cmd := socketActivate(t, &log, bridgeBin, "--loglevel=debug", "--passenv=PATH,LISTEN_PID,LISTEN_FDS", childBin, "env")
	c := dialAddr(t, addr)
	if resp, err := c.Upgrade(wstest.Options{}); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// Without --accept, systemd-socket-activate becomes wsbridge itself.
	if exe := exeOf(cmd.PID()); exe != bridgeBin {
		t.Fatalf("process %d runs %q, want wsbridge", cmd.PID(), exe)
	}
	// The child prints its environment, then echoes: the echo of "end"
	// marks the end of the list.
	if err := c.WriteMessage(wstest.OpText, []byte("end"), 0); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, _, err := c.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("reading the child's environment: %v", err)
		}
		if string(data) == "end" {
			break
		}
		if strings.HasPrefix(string(data), "LISTEN_") {
			t.Errorf("the child inherited %s", data)
		}
	}
	if !strings.Contains(log.String(), `from="systemd socket activation"`) {
		t.Errorf("the log does not say the socket came from systemd")
	}

	// Another endpoint: the same daemon, two sessions at once.
	t.Run("two sessions", func(t *testing.T) {
		var log wstest.Buffer
		addr, cmd := socketActivate(t, &log, bridgeBin, "--loglevel=debug", pidChild(t))
		a, b := openSession(t, dialAddr(t, addr)), openSession(t, dialAddr(t, addr))
		if a.bridge.PID != cmd.PID() || b.bridge.PID != cmd.PID() {
			t.Fatalf("sessions in %d and %d, want both in wsbridge %d", a.bridge.PID, b.bridge.PID, cmd.PID())
		}
		a.echoThenExit(t)
		b.echoThenExit(t)
		if proctest.MustStat(t, cmd.PID()).Gone() {
			t.Fatal("wsbridge exited after its sessions: with Accept=no it serves on")
		}
		// SIGTERM ends it with status 0, as a daemon on its own port.
		_ = cmd.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-cmd.done:
			if cmd.err != nil {
				t.Errorf("wsbridge after SIGTERM: %v, want exit 0", cmd.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("wsbridge still running 10s after SIGTERM")
		}
	})
}

// TestSocketActivationAcceptYes: systemd-socket-activate --accept starts
// a wsbridge --inetd per connection, with the connection on stdin and
// stdout (--inetd, StandardInput=socket) or as fd 3 (LISTEN_FDS=1).
func TestSocketActivationAcceptYes(t *testing.T) {
	for _, tc := range []struct{ name, option string }{{"stdin", "--inetd"}, {"fd 3", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			var log wstest.Buffer
			args := []string{"--accept"}
			if tc.option != "" {
				args = append(args, tc.option)
			}
			addr, ssa := socketActivate(t, &log, append(args, bridgeBin, "--inetd", "--loglevel=debug", "--devconsole", pidChild(t))...)
			c := dialAddr(t, addr)
			plainGets(t, c, 2)
			s := openSession(t, c)
			if s.bridge.PPID != ssa.PID() || exeOf(s.bridge.PID) != bridgeBin {
				t.Fatalf("the child's parent %d runs %q, want a wsbridge started for this connection", s.bridge.PID, exeOf(s.bridge.PID))
			}
			t2 := openSession(t, dialAddr(t, addr))
			if t2.bridge.PID == s.bridge.PID {
				t.Fatal("two connections in one wsbridge, want one each")
			}
			s.echoThenExit(t)
			t2.echoThenExit(t)
			proctest.WaitGone(t, 10*time.Second, s.bridge, t2.bridge)
			waitNoChildren(t, ssa.PID())
			for _, p := range []int{s.bridge.PID, t2.bridge.PID} {
				want := fmt.Sprintf("Child %d died with code 0", p)
				if !log.WaitFor(want, 5*time.Second) {
					t.Errorf("no %q: wsbridge --inetd did not exit 0", want)
				}
			}
			if !strings.Contains(log.String(), "serving one connection (--inetd)") {
				t.Error("wsbridge's log (stderr) does not say it served one connection")
			}
		})
	}
}

// TestSocketActivationHelp: under inetd, --help and a bad flag write
// nothing to the client: the usage goes to stderr, and when stderr is the
// connection too (as inetd and xinetd pass it), nowhere near it.
func TestSocketActivationHelp(t *testing.T) {
	stderrIsSocket := []string{"/bin/sh", "-c", `exec "$0" "$@" 2>&1`}
	for _, tc := range []struct {
		name string
		argv []string
		log  string // what stderr must say; "" when it is the socket
	}{
		{"--help", []string{bridgeBin, "--help"}, "Usage:"},
		{"--help, stderr the socket", append(stderrIsSocket, bridgeBin, "--help"), ""},
		{"bad flag, stderr the socket", append(stderrIsSocket, bridgeBin, "--inetd", "--bogus", childBin, "echo"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log wstest.Buffer
			addr, ssa := socketActivate(t, &log, append([]string{"--accept", "--inetd"}, tc.argv...)...)
			c := dialAddr(t, addr)
			if n, err := c.ReadEOF(10 * time.Second); n != 0 || err != nil {
				t.Errorf("the client got %d bytes (%v), want none", n, err)
			}
			waitNoChildren(t, ssa.PID())
			if tc.log != "" && !log.WaitFor(tc.log, 5*time.Second) {
				t.Errorf("stderr does not say %q", tc.log)
			}
		})
	}
}

// TestSocketActivationInetdSignal: SIGTERM ends a --inetd session as it
// does a daemon's: 1001 to the client, the child ended, exit 0.
func TestSocketActivationInetdSignal(t *testing.T) {
	var log wstest.Buffer
	addr, _ := socketActivate(t, &log, "--accept", "--inetd", bridgeBin, "--inetd", pidChild(t))
	s := openSession(t, dialAddr(t, addr))
	_ = syscall.Kill(s.bridge.PID, syscall.SIGTERM)
	if closed, err := s.c.AnswerClose(10 * time.Second); err != nil || closed.CloseCode() != 1001 {
		t.Errorf("close %d (%v), want 1001", closed.CloseCode(), err)
	}
	proctest.WaitGone(t, 10*time.Second, s.child, s.bridge)
	if want := fmt.Sprintf("Child %d died with code 0", s.bridge.PID); !log.WaitFor(want, 5*time.Second) {
		t.Errorf("no %q: wsbridge --inetd did not exit 0 after SIGTERM", want)
	}
}

// activated runs wsbridge with files as its fds 3, 4, ... and LISTEN_PID
// set to its own PID (sh's $$, kept by exec), and returns its output and
// exit code.
func activated(t *testing.T, files []*os.File, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, bridgeBin}, args...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES=web")
	cmd.ExtraFiles = files
	var out wstest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("wsbridge still running after 10s:\n%s", out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// TestSocketActivationBadFD: a passed descriptor that is not a listening
// stream socket is refused at start, exit 2, saying what it is.
func TestSocketActivationBadFD(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udpFile, _ := udp.(*net.UDPConn).File()
	defer udpFile.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialed, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	connFile, _ := dialed.(*net.TCPConn).File()
	defer connFile.Close()
	lFile, _ := l.(*net.TCPListener).File()
	defer lFile.Close()

	for _, tc := range []struct {
		name  string
		file  *os.File
		args  []string
		wants []string
	}{
		{"pipe", pr, nil, []string{"fd 3 (web) is a pipe", "listening stream sockets"}},
		{"udp", udpFile, nil, []string{"fd 3 (web) is a socket but not a stream"}},
		{"connected", connFile, nil, []string{"fd 3 (web) is a connected socket", "--inetd"}},
		{"listening with --port", lFile, []string{"--port=8080"}, []string{"remove --port"}},
		{"listening with --unixsocket", lFile, []string{"--unixsocket=" + filepath.Join(t.TempDir(), "u.sock")}, []string{"remove --unixsocket"}},
		{"listening with --inetd", lFile, []string{"--inetd"}, []string{"remove --inetd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := activated(t, []*os.File{tc.file}, append(tc.args, childBin, "echo")...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			for _, w := range tc.wants {
				if !strings.Contains(out, w) {
					t.Errorf("output %q does not say %q", out, w)
				}
			}
		})
	}
}

// TestInetdNotSocket: --inetd on a stdin that is not a connection says
// what it wanted, exit 2; and --port has no use with it.
func TestInetdNotSocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a file", []string{"--inetd"}, "--inetd: stdin is a file: it must be the client's connection"},
		{"with --port", []string{"--inetd", "--port=9000"}, "--port and --address have nothing to listen on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.CreateTemp(t.TempDir(), "stdin")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd := exec.Command(bridgeBin, append(tc.args, childBin, "echo")...)
			cmd.Stdin = f
			var stdout, stderr wstest.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("exit %d (%v), want 2", code, err)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
			if stdout.String() != "" {
				t.Errorf("stdout %q, want nothing: under inetd it is the client", stdout.String())
			}
		})
	}
}

// TestSocketActivationInetdShared: --shared under --inetd is one program
// per connection, started with its wsbridge and ended with it.
func TestSocketActivationInetdShared(t *testing.T) {
	var log wstest.Buffer
	addr, ssa := socketActivate(t, &log, "--accept", "--inetd", bridgeBin, "--inetd", "--loglevel=debug", "--shared", childBin, "echo")
	c := dialAddr(t, addr)
	if resp, err := c.Upgrade(wstest.Options{}); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	bridge := proctest.WaitChildren(t, ssa.PID(), 1, 10*time.Second)[0]
	child := proctest.WaitChildren(t, bridge.PID, 1, 10*time.Second)[0]
	if err := c.WriteMessage(wstest.OpText, []byte("hi"), 0); err != nil {
		t.Fatal(err)
	}
	if _, data, _, err := c.ReadMessage(10 * time.Second); err != nil || string(data) != "hi" {
		t.Fatalf("echo: %q %v", data, err)
	}
	if closed, err := c.CloseHandshake(1000, 10*time.Second); err != nil || closed.CloseCode() != 1000 {
		t.Fatalf("close: %d %v, want 1000", closed.CloseCode(), err)
	}
	proctest.WaitGone(t, 10*time.Second, child, bridge)
	if want := fmt.Sprintf("Child %d died with code 0", bridge.PID); !log.WaitFor(want, 5*time.Second) {
		t.Errorf("no %q: wsbridge --inetd --shared did not exit 0", want)
	}
}

// TestSocketActivationUnits: the socket units of examples/deploy/systemd
// and their services pass systemd-analyze verify, and the per-connection
// service keeps the sandbox of wsbridge.service.
func TestSocketActivationUnits(t *testing.T) {
	analyze := needTool(t, "/usr/bin/systemd-analyze", "apt-get install systemd")
	src := "../../examples/deploy/systemd/"
	dir := t.TempDir()
	units := map[string]string{}
	for _, name := range []string{"wsbridge.socket", "wsbridge.service", "wsbridge-inetd.socket", "wsbridge-inetd@.service"} {
		b, err := os.ReadFile(src + name)
		if err != nil {
			t.Fatal(err)
		}
		units[name] = string(b)
		// verify insists the ExecStart program exists.
		local := strings.Replace(string(b), "ExecStart=/usr/bin/wsbridge ", "ExecStart="+bridgeBin+" ", 1)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, pair := range [][]string{{"wsbridge.socket", "wsbridge.service"}, {"wsbridge-inetd.socket", "wsbridge-inetd@.service"}} {
		cmd := exec.Command(analyze, "verify", filepath.Join(dir, pair[0]), filepath.Join(dir, pair[1]))
		// An unknown or misspelt key is only a warning: stderr must be empty.
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", pair[0], err, out)
		}
	}
	out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", filepath.Join(dir, "wsbridge-inetd@.service")).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security wsbridge-inetd@.service: exposure above 2.0 (%v)\n%s", err, out)
	}
	// The sandbox is written twice: the copy must not drift.
	sandbox := func(unit string) string {
		_, after, _ := strings.Cut(unit, "\nDynamicUser=")
		before, _, _ := strings.Cut(after, "\n\n[Install]")
		return "DynamicUser=" + strings.TrimSpace(before)
	}
	var lines []string
	for _, l := range strings.Split(sandbox(units["wsbridge.service"]), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	inetd := units["wsbridge-inetd@.service"]
	for _, l := range lines {
		if !strings.Contains(inetd, "\n"+l+"\n") {
			t.Errorf("wsbridge-inetd@.service lacks %q of wsbridge.service's sandbox", l)
		}
	}
	if len(lines) < 20 || !strings.Contains(units["wsbridge-inetd@.service"], "\nStandardError=journal\n") {
		t.Errorf("sandbox of %d lines, StandardError=journal: the test no longer reads the units right", len(lines))
	}
}

// TestInetdLetsGoOfStdout: under inetd the connection is fds 0 and 1;
// wsbridge keeps its own duplicate and lets go of both, or what is
// written to stdout reaches the client, and the client's socket stays
// open as long as the process does, whatever wsbridge closes.
func TestInetdLetsGoOfStdout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client := dialAddr(t, ln.Addr().String())
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sf, err := sc.(*net.TCPConn).File()
	sc.Close()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(sf.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	var log wstest.Buffer
	cmd := exec.Command(bridgeBin, "--inetd", "--loglevel=debug", childBin, "echo")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sf, sf, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if !log.WaitFor("serving one connection", 10*time.Second) {
		t.Fatalf("no start:\n%s", log.String())
	}
	sock := fmt.Sprintf("socket:[%d]", st.Ino)
	var holders []string
	dir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == sock {
			holders = append(holders, e.Name())
		}
	}
	if len(holders) != 1 {
		t.Errorf("wsbridge --inetd holds the client's socket on fds %v, want one fd of its own (0 and 1 on /dev/null)", holders)
	}
	if resp, err := client.Upgrade(wstest.Options{}); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
}
