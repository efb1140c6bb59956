package examples

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// TestSysvinitScript starts and stops the real wsbridge with the init
// script, as BusyBox init's rcS would, and checks what an administrator
// relies on: the pidfile names wsbridge, it serves, status tells the truth,
// and stop leaves neither wsbridge nor its program running.
func TestSysvinitScript(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("deploy", "sysvinit", "S50wsbridge"))
	if err != nil {
		t.Fatal(err)
	}
	bin := wsbridgeBinary(t)
	echo := buildC(t, "line-echo")
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			shell := sh.argv(t)
			if _, errOut, code := run(t, "", nil, append(shell, "-n", script)...); code != 0 {
				t.Fatalf("%s -n: exit %d: %s", shell[0], code, errOut)
			}
			dir := t.TempDir()
			port := strconv.Itoa(freePort(t))
			env := []string{
				"DAEMON=" + bin,
				"WSBRIDGE_ARGS=--address=127.0.0.1 --port=" + port + " " + echo,
				"PIDFILE=" + filepath.Join(dir, "wsbridge.pid"),
				"LOGFILE=" + filepath.Join(dir, "wsbridge.log"),
			}
			initd := func(action string) (string, int) {
				out, errOut, code := run(t, dir, env, append(shell, script, action)...)
				return out + errOut, code
			}
			logOnFailure := func() {
				if t.Failed() {
					log, _ := os.ReadFile(filepath.Join(dir, "wsbridge.log"))
					t.Logf("wsbridge.log:\n%s", log)
				}
			}
			t.Cleanup(logOnFailure)

			if out, code := initd("start"); code != 0 || out != "Starting wsbridge: OK\n" {
				t.Fatalf("start: exit %d, %q", code, out)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "wsbridge.pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
			if err != nil {
				t.Fatalf("pidfile holds %q", raw)
			}
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != "" && exe != bin {
				t.Fatalf("the pidfile names pid %d, which runs %s, not wsbridge", pid, exe)
			}
			if out, code := initd("start"); code != 0 || !strings.Contains(out, "already running (pid "+strconv.Itoa(pid)+")") {
				t.Errorf("a second start: exit %d, %q; want it to find the running one", code, out)
			}
			if out, code := initd("status"); code != 0 || !strings.Contains(out, "is running") {
				t.Errorf("status: exit %d, %q", code, out)
			}

			b := &bridgeProc{addr: "127.0.0.1:" + port}
			c := dial(t, b, "/")
			say(t, c, "hello board")
			c.ExpectMessage(t, wstest.OpText, "echo: hello board")
			kids := childrenOf(t, pid)
			if kids != nil && len(kids) != 1 {
				t.Fatalf("wsbridge's children: %v, want the one line-echo", kids)
			}

			// Stop with the client still connected: its program must go too.
			if out, code := initd("stop"); code != 0 || out != "Stopping wsbridge: OK\n" {
				t.Fatalf("stop: exit %d, %q", code, out)
			}
			if alive(pid) {
				t.Errorf("wsbridge (pid %d) still running after stop", pid)
			}
			for kid, name := range kids {
				if alive(kid) {
					t.Errorf("its program %s (pid %d) still running after stop", name, kid)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "wsbridge.pid")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pidfile left behind after stop: %v", err)
			}
			if out, code := initd("status"); code != 3 || !strings.Contains(out, "not running") {
				t.Errorf("status after stop: exit %d, %q; want 3, not running", code, out)
			}
			if out, code := initd("stop"); code != 0 || !strings.Contains(out, "not running") {
				t.Errorf("stop when stopped: exit %d, %q", code, out)
			}
		})
	}
}

// TestSysvinitScriptBadConfig: a wsbridge that refuses its flags makes
// start fail at once, with no pidfile left to mislead status.
func TestSysvinitScriptBadConfig(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("deploy", "sysvinit", "S50wsbridge"))
	if err != nil {
		t.Fatal(err)
	}
	bin := wsbridgeBinary(t)
	dir := t.TempDir()
	shell := shells(t)[1].argv(t)
	out, errOut, code := run(t, dir, []string{
		"DAEMON=" + bin,
		"WSBRIDGE_ARGS=--config=" + filepath.Join(dir, "missing.conf"),
		"PIDFILE=" + filepath.Join(dir, "wsbridge.pid"),
		"LOGFILE=" + filepath.Join(dir, "wsbridge.log"),
	}, append(shell, script, "start")...)
	if code != 1 || !strings.Contains(out, "FAIL (see "+filepath.Join(dir, "wsbridge.log")+")") {
		t.Errorf("start with a missing config: exit %d, %q %q; want 1 and FAIL", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "wsbridge.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidfile left behind by a failed start: %v", err)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "wsbridge.log")); !strings.Contains(string(log), "missing.conf") {
		t.Errorf("the log does not say what failed: %q", log)
	}
}

// TestSysvinitScriptStalePidfile: a pidfile left by a crash, whose PID now
// belongs to another program, neither stops wsbridge from starting nor
// gets that program killed by stop.
func TestSysvinitScriptStalePidfile(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("deploy", "sysvinit", "S50wsbridge"))
	if err != nil {
		t.Fatal(err)
	}
	bin, echo := wsbridgeBinary(t), buildC(t, "line-echo")
	shell := shells(t)[1].argv(t)
	stranger := exec.Command("sleep", "60")
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stranger.Process.Kill(); stranger.Wait() })
	dir := t.TempDir()
	pidfile := writeFile(t, dir, "wsbridge.pid", strconv.Itoa(stranger.Process.Pid)+"\n", 0o644)
	env := []string{
		"DAEMON=" + bin,
		"WSBRIDGE_ARGS=--address=127.0.0.1 --port=" + strconv.Itoa(freePort(t)) + " " + echo,
		"PIDFILE=" + pidfile,
		"LOGFILE=" + filepath.Join(dir, "wsbridge.log"),
	}
	if out, errOut, code := run(t, dir, env, append(shell, script, "start")...); code != 0 || out != "Starting wsbridge: OK\n" {
		t.Fatalf("start over a stale pidfile: exit %d, %q %q; want it to start wsbridge", code, out, errOut)
	}
	raw, _ := os.ReadFile(pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if pid == stranger.Process.Pid || pid == 0 {
		t.Fatalf("pidfile holds %q after start", raw)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if out, errOut, code := run(t, dir, env, append(shell, script, "stop")...); code != 0 || out != "Stopping wsbridge: OK\n" {
		t.Fatalf("stop: exit %d, %q %q", code, out, errOut)
	}
	if alive(pid) {
		t.Errorf("wsbridge (pid %d) still running after stop", pid)
	}
	writeFile(t, dir, "wsbridge.pid", strconv.Itoa(stranger.Process.Pid)+"\n", 0o644)
	if out, errOut, code := run(t, dir, env, append(shell, script, "stop")...); code != 0 || !strings.Contains(out, "not running") {
		t.Errorf("stop with a pidfile naming another program: exit %d, %q %q; want not running", code, out, errOut)
	}
	if !alive(stranger.Process.Pid) {
		t.Error("stop killed the program a stale pidfile named")
	}
}

// procdInstance is what start_service asked procd to run.
type procdInstance struct {
	name   string
	argv   []string
	params []string
}

// runProcdInit loads uci as /etc/config/wsbridge, sources the procd init
// script under the stubs with PROG=prog and runs start_service and
// service_triggers. It returns the instances, what went to stderr and the
// triggers.
func runProcdInit(t *testing.T, shell []string, uci, prog string) (instances []procdInstance, stderr string, triggers []string) {
	t.Helper()
	initScript, err := filepath.Abs(filepath.Join("deploy", "openwrt", "files", "wsbridge.init"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "config/wsbridge", uci, 0o644)
	driver := writeFile(t, dir, "driver.sh", procdStubs+`
. "$INIT_SCRIPT"
PROG="$TEST_PROG"
start_service
service_triggers
`, 0o644)
	out, errOut, code := run(t, dir, []string{"UCI_CONFIG_DIR=" + filepath.Join(dir, "config"),
		"INIT_SCRIPT=" + initScript, "TEST_PROG=" + prog}, append(shell, driver)...)
	if code != 0 {
		t.Fatalf("start_service: exit %d\n%s%s", code, out, errOut)
	}
	var cur *procdInstance
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		word, rest, _ := strings.Cut(line, " ")
		switch {
		case word == "instance":
			instances = append(instances, procdInstance{name: rest})
			cur = &instances[len(instances)-1]
		case word == "trigger":
			triggers = append(triggers, rest)
		case line == "":
		case cur == nil:
			t.Fatalf("%q outside an instance:\n%s", line, out)
		case word == "arg":
			cur.argv = append(cur.argv, rest)
		case word == "param":
			cur.params = append(cur.params, rest)
		case word == "end":
			cur = nil
		default:
			t.Fatalf("unexpected output %q", line)
		}
	}
	return instances, errOut, triggers
}

// TestProcdInit checks the UCI → flags mapping of the OpenWrt init script
// under BusyBox's sh (OpenWrt's) and dash, then runs the command line it
// builds with the real wsbridge.
func TestProcdInit(t *testing.T) {
	shipped := readRecipe(t, "openwrt/files/wsbridge.config")
	enabled := strings.Replace(shipped, "option enabled '0'", "option enabled '1'", 1)
	if enabled == shipped {
		t.Fatal("the shipped UCI config no longer has option enabled '0'; update this test")
	}
	wantParams := []string{"respawn 3600 5 5", "stdout 1", "stderr 1", "term_timeout 15"}
	cases := []struct {
		name       string
		uci        string
		want       []procdInstance // argv after PROG
		wantStderr string
	}{
		{name: "shipped config, disabled", uci: shipped},
		{name: "shipped config, enabled", uci: enabled, want: []procdInstance{{name: "main", argv: []string{
			"--port=8080", "--loglevel=info", "--origin=http://192.168.1.1", "--shared",
			"--", "/usr/bin/sensor", "-i", "1000"}}}},
		{name: "every option, two instances", uci: `
config instance 'a'
	option enabled 'yes'
	option port '9000'
	option loglevel 'error'
	option framing 'len32'
	option max_message '64KiB'
	option max_conns '32'
	option maxforks '8'
	option passenv 'PATH,LANG'
	option workdir '/tmp'
	option staticdir '/www/ws'
	option closems '200'
	option queue '1MiB'
	option ping_interval '30s'
	list address '127.0.0.1'
	list address '::1'
	list origin 'http://192.168.1.1'
	list origin 'https://router.lan:8443'
	list allow_host 'router.example.com'
	list header 'X-Frame-Options: DENY'
	option shared 'lazy'
	option command '/usr/bin/prog  --glob *  $HOME'

config instance 'b'
	option enabled '1'
	option config '/etc/wsbridge.conf'
	option port '1234'

config other 'c'
	option enabled '1'
	option command '/bin/cat'
`, want: []procdInstance{
			{name: "a", argv: []string{"--port=9000", "--loglevel=error", "--framing=len32", "--max-message=64KiB",
				"--max-conns=32", "--maxforks=8", "--passenv=PATH,LANG", "--workdir=/tmp", "--staticdir=/www/ws",
				"--closems=200", "--queue=1MiB", "--ping-interval=30s", "--address=127.0.0.1", "--address=::1",
				"--origin=http://192.168.1.1", "--origin=https://router.lan:8443", "--allow-host=router.example.com",
				"--header=X-Frame-Options: DENY",
				"--shared=lazy", "--", "/usr/bin/prog", "--glob", "*", "$HOME"}},
			// A config file says everything; the other options are not added.
			{name: "b", argv: []string{"--config=/etc/wsbridge.conf"}},
		}},
		{name: "no command", uci: "config instance 'x'\n\toption enabled '1'\n\toption port '80'\n",
			wantStderr: "wsbridge: instance x has neither command nor config: not started\n"},
	}
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			shell := sh.argv(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					got, stderr, triggers := runProcdInit(t, shell, tc.uci, "/usr/bin/wsbridge")
					var want []procdInstance
					for _, w := range tc.want {
						want = append(want, procdInstance{w.name, append([]string{"/usr/bin/wsbridge"}, w.argv...), wantParams})
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("instances:\n got %q\nwant %q", got, want)
					}
					if stderr != tc.wantStderr {
						t.Errorf("stderr %q, want %q", stderr, tc.wantStderr)
					}
					if !reflect.DeepEqual(triggers, []string{"wsbridge"}) {
						t.Errorf("reload triggers %q, want wsbridge's config", triggers)
					}
				})
			}
		})
	}

	// What procd would run, run: the flags the mapping makes are ones
	// wsbridge accepts, and the command after -- is the program it serves.
	t.Run("runs", func(t *testing.T) {
		shell := shells(t)[1].argv(t)
		bin, echo := wsbridgeBinary(t), buildC(t, "line-echo")
		port := strconv.Itoa(freePort(t))
		uci := fmt.Sprintf("config instance 'echo'\n\toption enabled '1'\n\toption port '%s'\n\tlist address '127.0.0.1'\n"+
			"\tlist origin 'http://192.168.1.1'\n\toption max_message '64KiB'\n\toption loglevel 'info'\n\toption command '%s'\n", port, echo)
		got, stderr, _ := runProcdInit(t, shell, uci, bin)
		if len(got) != 1 || stderr != "" {
			t.Fatalf("instances %q, stderr %q; want one", got, stderr)
		}
		b, err := launchBridge(t, "127.0.0.1:"+port, got[0].argv)
		if err != nil {
			t.Fatalf("wsbridge %q: %v\n%s", got[0].argv, err, b.stderr.String())
		}
		c := dial(t, b, "/")
		say(t, c, "hello router")
		c.ExpectMessage(t, wstest.OpText, "echo: hello router")
		closeNormally(t, c)
		b.stop(t)
	})
}
