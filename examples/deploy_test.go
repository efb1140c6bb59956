package examples

import (
	"context"
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
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// The recipes of deploy/, each checked by the tool that reads it on a
// board or in a build tree: systemd-analyze for the unit, dash and BusyBox
// sh running the init script for real, the procd script under stand-ins
// for OpenWrt's shell functions, GNU make for the package makefiles, and
// kconfiglib for Buildroot's Config.in.

// run runs argv in dir with env added, and returns its output and exit
// code; it fails the test if it cannot start or outlives runTimeout.
func run(t *testing.T, dir string, env []string, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runFor(t, runTimeout, dir, env, argv...)
}

// runFor is run with its own time limit, for steps that compile.
func runFor(t *testing.T, limit time.Duration, dir string, env []string, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var out, errOut wstest.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = ioTimeout
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s still running after %v (stderr %q)", strings.Join(argv, " "), limit, errOut.String())
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// writeFile writes content to dir/name, making the directories, and
// returns the path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRecipe returns a file of deploy/, following links as `cp -rL` does.
func readRecipe(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSystemdUnit(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze", "systemd")
	bin := wsbridgeBinary(t)
	unit := readRecipe(t, "systemd/wsbridge.service")
	// verify insists the ExecStart program exists: point it at the one
	// just built.
	local := strings.Replace(unit, "ExecStart=/usr/bin/wsbridge ", "ExecStart="+bin+" ", 1)
	if local == unit {
		t.Fatal("the unit no longer starts /usr/bin/wsbridge; update this test")
	}
	path := writeFile(t, t.TempDir(), "wsbridge.service", local, 0o644)

	// Exit 0 is not enough: an unknown or misspelt key is a warning.
	if out, errOut, code := run(t, "", nil, analyze, "verify", path); code != 0 || errOut != "" {
		t.Errorf("systemd-analyze verify: exit %d\n%s%s", code, out, errOut)
	}
	// The sandbox: systemd's own exposure score, 0 (locked down) to 10,
	// must stay at most 2.0 ("OK"); the threshold is in tenths.
	if out, errOut, code := run(t, "", nil, analyze, "security", "--offline=true", "--threshold=20", path); code != 0 {
		t.Errorf("systemd-analyze security: exposure above 2.0 (exit %d)\n%s%s", code, lastLines(out, 3), errOut)
	}
	// Stopping must reach the children wsbridge started: not KillMode=process
	// or none, which would leave them running.
	if !strings.Contains(unit, "\nKillMode=mixed\n") && !strings.Contains(unit, "\nKillMode=control-group\n") {
		t.Error("the unit's KillMode is neither mixed nor control-group: stopping it could leave children behind")
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// shells are the shells an init script must run under: dash (Debian's
// /bin/sh) and BusyBox's ash, as on most boards.
func shells(t *testing.T) []shellRun {
	return []shellRun{
		{"dash", func(t *testing.T) []string { return []string{requireTool(t, "dash", "dash")} }},
		{"busybox", func(t *testing.T) []string { return []string{requireTool(t, "busybox", "busybox"), "sh"} }},
	}
}

// alive reports whether pid is a process that has not exited: a zombie
// waiting for init to reap it has.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

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

// procdStubs stand in for what /etc/rc.common and /lib/functions.sh give a
// procd init script on OpenWrt. The UCI functions keep options in
// CONFIG_<section>_<option> variables and load a file by sourcing it, as
// functions.sh does; the procd functions print what they are given:
// "instance NAME", one "arg WORD" per word of the command, "param NAME
// VALUES", "end".
const procdStubs = `
CONFIG_SECTIONS=
CONFIG_NUM=0
config() {
	CONFIG_NUM=$((CONFIG_NUM + 1))
	CONFIG_SECTION="${2:-cfg$CONFIG_NUM}"
	CONFIG_SECTIONS="$CONFIG_SECTIONS $CONFIG_SECTION"
	eval "CONFIG_${CONFIG_SECTION}_TYPE=\$1"
}
option() { eval "CONFIG_${CONFIG_SECTION}_$1=\$2"; }
list() {
	eval "n=\$((\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0} + 1))"
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$n=\$2; CONFIG_${CONFIG_SECTION}_$1_LENGTH=$n"
}
config_load() { . "$UCI_CONFIG_DIR/$1"; }
config_get() { eval "$1=\${CONFIG_$2_$3:-\$4}"; }
config_get_bool() {
	config_get "$1" "$2" "$3" "$4"
	eval "v=\$$1"
	case "$v" in
	1 | on | true | yes | enabled) eval "$1=1" ;;
	0 | off | false | no | disabled) eval "$1=0" ;;
	*) eval "$1=\$4" ;;
	esac
}
config_foreach() {
	fn="$1" type="$2"
	for s in $CONFIG_SECTIONS; do
		eval "st=\$CONFIG_${s}_TYPE"
		[ "$st" = "$type" ] && "$fn" "$s"
	done
	return 0
}
config_list_foreach() {
	eval "len=\${CONFIG_$1_$2_LENGTH:-0}"
	i=1
	while [ "$i" -le "$len" ]; do
		eval "item=\$CONFIG_$1_$2_ITEM$i"
		"$3" "$item"
		i=$((i + 1))
	done
}
procd_open_instance() { echo "instance $1"; }
procd_set_param() {
	name="$1"
	shift
	if [ "$name" = command ]; then
		for a in "$@"; do echo "arg $a"; done
	else
		echo "param $name $*"
	fi
}
procd_append_param() { procd_set_param "$@"; }
procd_close_instance() { echo end; }
procd_add_reload_trigger() { echo "trigger $*"; }
`

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

// repoRoot is the module's root, the source the package recipes build.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// copyRecipe copies the files of deploy/from into dir, following links as
// `cp -rL` does, keeping the execute bits.
func copyRecipe(t *testing.T, from, dir string) {
	t.Helper()
	src := filepath.Join("deploy", from)
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := os.Stat(path) // through a link
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		writeFile(t, dir, rel, readRecipe(t, filepath.Join(from, rel)), info.Mode().Perm())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkInstalled checks root/path is a copy of the recipe file want with
// mode perm.
func checkInstalled(t *testing.T, root, path, want string, perm os.FileMode) {
	t.Helper()
	info, err := os.Stat(filepath.Join(root, path))
	if err != nil {
		t.Errorf("not installed: %v", err)
		return
	}
	if info.Mode().Perm() != perm {
		t.Errorf("%s installed with mode %v, want %v", path, info.Mode().Perm(), perm)
	}
	if got, _ := os.ReadFile(filepath.Join(root, path)); string(got) != readRecipe(t, want) {
		t.Errorf("%s is not deploy/%s", path, want)
	}
}

// checkVersion runs an installed wsbridge and checks the version the
// recipe stamped into it.
func checkVersion(t *testing.T, bin, want string) {
	t.Helper()
	if out, errOut, code := run(t, "", nil, bin, "--version"); code != 0 || out != "wsbridge "+want+"\n" {
		t.Errorf("%s --version: exit %d, %q %q; want %q", bin, code, out, errOut, "wsbridge "+want)
	}
}

// OpenWrt's build system, reduced to what the package Makefile uses: the
// variables of rules.mk, BuildPackage checking what every package must
// set, and golang-package.mk building GO_PKG_BUILD_PKG with GO_PKG_TAGS,
// GO_PKG_LDFLAGS and GO_PKG_LDFLAGS_X as its go build does.
const (
	openwrtRules = `INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_CONF:=install -m0600
`
	openwrtPackage = `PKG_BUILD_DIR:=$(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
define BuildPackage
$(foreach v,PKG_NAME PKG_VERSION PKG_RELEASE PKG_SOURCE PKG_SOURCE_URL PKG_HASH PKG_MAINTAINER,$(if $($(v)),,$(error $(v) is not set)))
$(if $(value Package/$(1)),,$(error Package/$(1) is not defined))
$(eval $(Package/$(1)))
$(foreach v,SECTION CATEGORY TITLE URL DEPENDS,$(if $($(v)),,$(error Package/$(1) does not set $(v))))
$(if $(value Package/$(1)/description),,$(error Package/$(1)/description is not defined))
PACKAGE_NAME:=$(1)
endef
install: compile
	$(call Package/$(PACKAGE_NAME)/install,$(IPKG_ROOT))
conffiles:
	@:$(info $(Package/$(PACKAGE_NAME)/conffiles))
`
	openwrtGolang = `GO_ARCH_DEPENDS:=@(aarch64||arm||i386||i686||mips||mips64||mips64el||mipsel||powerpc64||x86_64)
GO_PKG_BUILD_BIN_DIR=$(PKG_BUILD_DIR)/bin
define GoBinPackage
$(if $(GO_PKG),,$(error GO_PKG is not set))
$(if $(filter $(GO_PKG) $(GO_PKG)/%,$(GO_PKG_BUILD_PKG)),,$(error GO_PKG_BUILD_PKG is not in GO_PKG))
endef
define GoPackage/Package/Install/Bin
	$(INSTALL_DIR) $(1)/usr/bin
	$(INSTALL_BIN) $(GO_PKG_BUILD_BIN_DIR)/* $(1)/usr/bin/
endef
compile:
	mkdir -p $(GO_PKG_BUILD_BIN_DIR)
	cd $(WSBRIDGE_SRC) && CGO_ENABLED=0 go build -trimpath -tags "$(GO_PKG_TAGS)" -ldflags "$(GO_PKG_LDFLAGS) $(patsubst %,-X %,$(GO_PKG_LDFLAGS_X))" -o $(GO_PKG_BUILD_BIN_DIR)/ $(GO_PKG_BUILD_PKG)
`
)

// TestOpenWrtPackage builds and installs the OpenWrt package with GNU make
// and stand-ins for OpenWrt's includes: a package Makefile that misses a
// required variable, names a package outside its module, installs the
// wrong files or stamps no version fails here.
func TestOpenWrtPackage(t *testing.T) {
	mk := requireTool(t, "make", "make")
	tmp := t.TempDir()
	pkg := filepath.Join(tmp, "feed", "net", "wsbridge")
	copyRecipe(t, "openwrt", pkg)
	writeFile(t, tmp, "feed/lang/golang/golang-package.mk", openwrtGolang, 0o644)
	writeFile(t, tmp, "top/rules.mk", openwrtRules, 0o644)
	writeFile(t, tmp, "top/include/package.mk", openwrtPackage, 0o644)
	root := filepath.Join(tmp, "root")
	vars := []string{"TOPDIR=" + filepath.Join(tmp, "top"), "BUILD_DIR=" + filepath.Join(tmp, "build"),
		"IPKG_ROOT=" + root, "WSBRIDGE_SRC=" + repoRoot(t)}

	if out, errOut, code := runFor(t, buildTimeout, pkg, nil, append([]string{mk, "install"}, vars...)...); code != 0 {
		t.Fatalf("make install: exit %d\n%s%s", code, out, errOut)
	}
	checkVersion(t, filepath.Join(root, "usr/bin/wsbridge"), "0.1.0-1")
	checkInstalled(t, root, "etc/init.d/wsbridge", "openwrt/files/wsbridge.init", 0o755)
	checkInstalled(t, root, "etc/config/wsbridge", "openwrt/files/wsbridge.config", 0o600)

	// opkg keeps a user's edits of the conffiles across upgrades.
	out, errOut, code := run(t, pkg, nil, append([]string{mk, "-s", "conffiles"}, vars...)...)
	if code != 0 {
		t.Fatalf("make conffiles: exit %d\n%s%s", code, out, errOut)
	}
	if got := strings.Fields(out); !reflect.DeepEqual(got, []string{"/etc/config/wsbridge"}) {
		t.Errorf("conffiles %q, want /etc/config/wsbridge", got)
	}
}

// Buildroot's golang-package, reduced likewise: the package name from the
// .mk file's name, the variables every Go package sets, go build of each
// of <PKG>_BUILD_TARGETS in <PKG>_GOMOD with <PKG>_TAGS and <PKG>_LDFLAGS,
// and the install hooks.
const buildrootMakefile = `github = https://github.com/$(1)/$(2)/archive/$(3)
INSTALL = install
define inner-golang-package
$$(foreach v,VERSION SITE GOMOD BUILD_TARGETS,$$(if $$($(2)_$$(v)),,$$(error $(2)_$$(v) is not set)))
$(2)_PKGDIR := $(dir $(lastword $(MAKEFILE_LIST)))
$(2)_INSTALL_BINS ?= $(1)
build:
	$$(foreach t,$$($(2)_BUILD_TARGETS),cd $$(WSBRIDGE_SRC) && CGO_ENABLED=0 go build -trimpath -tags "$$($(2)_TAGS)" -ldflags "$$($(2)_LDFLAGS)" -o $$(BUILD_DIR)/bin/ ./$$(t) &&) true
install-target: build
	$$(foreach b,$$($(2)_INSTALL_BINS),$$(INSTALL) -D -m 0755 $$(BUILD_DIR)/bin/$$(b) $$(TARGET_DIR)/usr/bin/$$(b) &&) true
install-sysv: ; $$($(2)_INSTALL_INIT_SYSV)
install-systemd: ; $$($(2)_INSTALL_INIT_SYSTEMD)
print-%: ; @echo '$$($(2)_$$*)'
endef
golang-package = $(call inner-golang-package,$(basename $(notdir $(lastword $(MAKEFILE_LIST)))),$(shell echo $(basename $(notdir $(lastword $(MAKEFILE_LIST)))) | tr a-z- A-Z_))
include package/wsbridge/wsbridge.mk
`

// TestBuildrootPackage builds and installs the Buildroot package with GNU
// make and a stand-in for golang-package, then checks its Config.in with
// kconfiglib, Python's implementation of the kernel's Kconfig language.
func TestBuildrootPackage(t *testing.T) {
	mk := requireTool(t, "make", "make")
	tmp := t.TempDir()
	copyRecipe(t, "buildroot", filepath.Join(tmp, "package", "wsbridge"))
	writeFile(t, tmp, "Makefile", buildrootMakefile, 0o644)
	target := filepath.Join(tmp, "target")
	vars := []string{"BUILD_DIR=" + filepath.Join(tmp, "build"), "TARGET_DIR=" + target, "WSBRIDGE_SRC=" + repoRoot(t)}
	make := func(goals ...string) string {
		t.Helper()
		// install-target compiles wsbridge; the rest only prints.
		out, errOut, code := runFor(t, buildTimeout, tmp, nil, append(append([]string{mk, "-s"}, goals...), vars...)...)
		if code != 0 {
			t.Fatalf("make %s: exit %d\n%s%s", strings.Join(goals, " "), code, out, errOut)
		}
		return out
	}

	version := strings.TrimSpace(make("print-VERSION"))
	if site, want := strings.TrimSpace(make("print-SITE")), "https://github.com/wsbridge/wsbridge/archive/v"+version; site != want {
		t.Errorf("WSBRIDGE_SITE is %s, want %s", site, want)
	}
	make("install-target", "install-sysv", "install-systemd")
	checkVersion(t, filepath.Join(target, "usr/bin/wsbridge"), version)
	checkInstalled(t, target, "etc/init.d/S50wsbridge", "sysvinit/S50wsbridge", 0o755)
	checkInstalled(t, target, "usr/lib/systemd/system/wsbridge.service", "systemd/wsbridge.service", 0o644)

	t.Run("Config.in", func(t *testing.T) { checkKconfig(t, tmp) })
}

// checkKconfig reads package/wsbridge/Config.in under dir as Buildroot's
// menuconfig does: no warnings, and BR2_PACKAGE_WSBRIDGE can be chosen
// only where Buildroot's Go supports the target architecture.
func checkKconfig(t *testing.T, dir string) {
	// Debian's python, which python3-kconfiglib installs for, whatever
	// else PATH finds first.
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		requireTool(t, python, "python3")
	}
	if _, _, code := run(t, "", nil, python, "-c", "import kconfiglib"); code != 0 {
		msg := "python3 cannot import kconfiglib: install it with `apt-get install python3-kconfiglib` (or `make test-deps`)"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	writeFile(t, dir, "Config.in", `mainmenu "stand-in for Buildroot"
config BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS
	bool "Go supports the target"
source "package/wsbridge/Config.in"
`, 0o644)
	script := writeFile(t, dir, "check.py", `import kconfiglib
kc = kconfiglib.Kconfig("Config.in", warn_to_stderr=False)
for w in kc.warnings:
    print("warning:", w)
arch, pkg = kc.syms["BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS"], kc.syms["BR2_PACKAGE_WSBRIDGE"]
for a in ("n", "y"):
    arch.set_value(a)
    pkg.set_value("y")
    print("arch=%s wsbridge=%s" % (a, pkg.str_value))
node = pkg.nodes[0]
print("prompt:", node.prompt[0])
print("help:", (node.help or "").split("\n")[0])
`, 0o644)
	out, errOut, code := run(t, dir, []string{"srctree=" + dir}, python, script)
	want := "arch=n wsbridge=n\narch=y wsbridge=y\nprompt: wsbridge\nhelp: Turns a program that reads stdin and writes stdout into a\n"
	if code != 0 || out != want {
		t.Errorf("kconfiglib: exit %d\n%s%s\nwant:\n%s", code, out, errOut, want)
	}
}
