package procs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestEchoRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		mode string
		in   string
	}{
		{"echo one line", "echo", "hello\n"},
		{"echo several lines", "echo", "a\nbb\n\nccc\n"},
		{"echo unterminated last line", "echo", "a\nlast"},
		{"cat binary", "cat", "\x00\xff\xfe\n\r\x01"},
		{"cat larger than a pipe", "cat", strings.Repeat("0123456789abcdef", 64<<10)}, // 1 MiB
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustStart(t, child(tt.mode))
			werr := make(chan error, 1)
			go func() {
				_, err := io.WriteString(p.Stdin, tt.in)
				p.Stdin.Close()
				werr <- err
			}()
			p.Stdout.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(p.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.in {
				t.Errorf("got %d bytes, want %d (%.40q vs %.40q)", len(got), len(tt.in), got, tt.in)
			}
			if s := waitDone(t, p); !s.Success() {
				t.Errorf("status %v", s)
			}
		})
	}
}

// Our ends of the pipes are nonblocking and polled: deadlines work on both.
func TestPipesArePollable(t *testing.T) {
	p := mustStart(t, child("noread"))
	if got := readLine(t, p); got != "ready" {
		t.Fatalf("got %q", got)
	}

	p.Stdout.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := p.Stdout.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from a silent child: %v, want a deadline error", err)
	}

	// The child never reads: the pipe fills and a write times out.
	p.Stdin.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := p.Stdin.Write(make([]byte, 4<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write to a child that does not read: %d, %v; want a deadline error", n, err)
	}

	// RawConn works (it is what the stderr goroutine uses).
	rc, err := p.Stdout.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(func(fd uintptr) {}); err != nil {
		t.Error(err)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		signal syscall.Signal // sent after the first line
		want   Status
		str    string
	}{
		{"exit 0", []string{"exit", "0", "x"}, 0, Status{Code: 0}, "exit status 0"},
		{"exit 3", []string{"exit", "3", "x"}, 0, Status{Code: 3}, "exit status 3"},
		{"killed by SIGKILL", []string{"noread"}, syscall.SIGKILL, Status{Code: -1, Signal: syscall.SIGKILL}, "killed by signal 9 (killed)"},
		{"SIGTERM has its default action", []string{"noread"}, syscall.SIGTERM, Status{Code: -1, Signal: syscall.SIGTERM}, "killed by signal 15 (terminated)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustStart(t, child(tt.args...))
			readLine(t, p)
			if tt.signal != 0 {
				if err := p.Signal(tt.signal); err != nil {
					t.Fatal(err)
				}
			}
			got := waitDone(t, p)
			if got != tt.want {
				t.Errorf("status %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
			if got.Success() != (tt.want == Status{}) {
				t.Errorf("Success() = %v", got.Success())
			}
		})
	}
}

func TestStatusBeforeDone(t *testing.T) {
	p := mustStart(t, child("sleep"))
	if s := p.Status(); s != (Status{}) {
		t.Errorf("Status before Done = %+v", s)
	}
}

// A child writing to a stdout nobody reads dies of SIGPIPE, the default.
func TestSIGPIPEDefault(t *testing.T) {
	p := mustStart(t, child("flood", "100000", "100"))
	p.Stdout.Close()
	if s := waitDone(t, p); s.Signal != syscall.SIGPIPE {
		t.Errorf("status %v, want killed by SIGPIPE", s)
	}
}

// The child has no standard signal blocked or ignored even though the
// daemon has asked for the signals a daemon handles. Signals 32 and 33
// belong to glibc (thread cancellation): GNU make starts recipes with them
// ignored, an exec passes that on to every descendant, and no program ever
// sees them, so only signals 1 to 31 are checked.
func TestChildSignalState(t *testing.T) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE, syscall.SIGUSR1)
	defer signal.Stop(c)
	p := mustStart(t, child("signals"))
	line := readLine(t, p)
	var blocked, ignored uint64
	if _, err := fmt.Sscanf(line, "sigblk %x sigign %x", &blocked, &ignored); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	const standard = 1<<31 - 1 // bit n-1 is signal n
	if blocked&standard != 0 || ignored&standard != 0 {
		t.Errorf("child has standard signals blocked %#x, ignored %#x; want none (%q)", blocked&standard, ignored&standard, line)
	}
}

func TestOwnProcessGroup(t *testing.T) {
	p := mustStart(t, child("pid"))
	if got, want := readLine(t, p), fmt.Sprintf("pid %d pgid %d", p.PID, p.PID); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSignalAfterExit(t *testing.T) {
	p := mustStart(t, child("exit", "0"))
	waitDone(t, p)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("Signal to a group that is gone: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec Spec
		want string
		is   error
	}{
		{"missing bare name", Spec{Path: "no-such-program-wsbridge", Env: []string{"PATH=/usr/bin:/bin"}},
			`procs: start "no-such-program-wsbridge": executable file not found in $PATH`, ErrNotFound},
		{"missing path", Spec{Path: "/no/such/program"},
			`procs: start "/no/such/program": no such file or directory`, os.ErrNotExist},
		{"directory", Spec{Path: dir},
			fmt.Sprintf("procs: start %q: is a directory", dir), nil},
		{"not executable", Spec{Path: plain},
			fmt.Sprintf("procs: start %q: permission denied", plain), os.ErrPermission},
		{"not executable in PATH", Spec{Path: "plain", Env: []string{"PATH=" + dir}},
			`procs: start "plain": executable file not found in $PATH`, ErrNotFound},
		{"relative PATH entries are skipped", Spec{Path: filepath.Base(testChild), Env: []string{"PATH=."}, Dir: filepath.Dir(testChild)},
			fmt.Sprintf("procs: start %q: executable file not found in $PATH", filepath.Base(testChild)), ErrNotFound},
		{"empty path", Spec{}, `procs: start "": no such file or directory`, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(tt.spec)
			if err == nil {
				p.Terminate(0)
				p.Stdout.Close()
				t.Fatal("started")
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			// LookPath refuses what Start would, for the same reason.
			if path, lerr := LookPath(tt.spec); lerr == nil || (tt.is != nil && !errors.Is(lerr, tt.is)) {
				t.Errorf("LookPath = %q, %v; want an error that is %v", path, lerr, tt.is)
			}
		})
	}
}

func TestPathLookup(t *testing.T) {
	dir, name := filepath.Split(testChild)
	tests := []struct {
		name       string
		spec       Spec
		daemonPATH string
	}{
		{"PATH of Env", Spec{Path: name, Env: []string{"PATH=/nonexistent:" + dir}}, "/nonexistent"},
		{"last PATH of Env wins", Spec{Path: name, Env: []string{"PATH=/nonexistent", "PATH=" + dir}}, "/nonexistent"},
		{"daemon PATH when Env has none", Spec{Path: name, Env: []string{"A=b"}}, dir},
		{"relative to Dir", Spec{Path: "./" + name, Dir: dir}, "/nonexistent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.daemonPATH)
			tt.spec.Args = []string{name, "exit", "7"}
			if _, err := LookPath(tt.spec); err != nil {
				t.Errorf("LookPath: %v", err)
			}
			p := mustStart(t, tt.spec)
			if s := waitDone(t, p); s.Code != 7 {
				t.Errorf("status %v, want exit status 7", s)
			}
		})
	}
}

// The child's environment is Spec.Env and nothing else but its marker.
func TestChildEnvironment(t *testing.T) {
	t.Setenv("WSBRIDGE_SECRET", "leak")
	t.Setenv("LANG", "C.UTF-8")
	env := CGI{RemoteAddr: "192.0.2.1", Headers: [][2]string{{"X-Test", "1"}}}.Environ([]string{"LANG"})
	spec := child("env")
	spec.Env = env
	p := mustStart(t, spec)
	p.Stdin.Close()
	p.Stdout.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(p.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	want := append([]string(nil), env...)
	want = append(want, markerKey+"="+p.marker)
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("child environment:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// No descriptor of one child leaks into another: a child started while
// another's pipes are open still sees EOF when we close its stdin.
func TestNoDescriptorLeakBetweenChildren(t *testing.T) {
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := Start(child("echo"))
			if err != nil {
				t.Error(err)
				return
			}
			defer p.Stdout.Close()
			defer p.Terminate(0)
			io.WriteString(p.Stdin, "x\n")
			p.Stdin.Close()
			p.Stdout.SetReadDeadline(time.Now().Add(10 * time.Second))
			out, err := io.ReadAll(p.Stdout)
			if err != nil || !bytes.Equal(out, []byte("x\n")) {
				t.Errorf("got %q, %v", out, err)
			}
		}()
	}
	wg.Wait()
}

// The child has exactly 0, 1 and 2, in blocking mode, even while other
// children's pipes are open in the daemon.
func TestChildDescriptors(t *testing.T) {
	other := mustStart(t, child("sleep"))
	_ = other
	for _, withStderr := range []bool{false, true} {
		t.Run(fmt.Sprintf("stderr pipe %v", withStderr), func(t *testing.T) {
			spec := child("fds")
			if withStderr {
				spec.Stderr = func([]byte) {}
			}
			p := mustStart(t, spec)
			if got, want := readLine(t, p), "fds 0,1,2 nonblocking -"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// A failed fork leaves no descriptor behind.
func TestStartForkFails(t *testing.T) {
	fds := countFDs(t)
	sys := &system{
		forkExec: func(string, []string, *syscall.ProcAttr) (int, error) { return 0, syscall.EAGAIN },
		kill:     osSystem.kill,
	}
	spec := child("echo")
	spec.Stderr = func([]byte) {}
	if _, err := start(spec, sys); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("error %v, want EAGAIN", err)
	}
	if got := countFDs(t); got != fds {
		t.Errorf("%d descriptors open, %d before", got, fds)
	}
}

// The /proc walk for kernels without close_range marks what it finds.
func TestCloseOnExecFromProc(t *testing.T) {
	fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	closeOnExecFromProc()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Error("not close-on-exec")
	}
}
