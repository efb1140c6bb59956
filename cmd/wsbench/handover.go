package main

// The hand-over scenario (issue 11): what a WebSocket connection costs
// when boa, the board's web server, runs the hand-over CGI for it, which
// passes the client's socket to a wsbridge --handover daemon, or when
// lighttpd does, which passes two pipes and relays them for the session's
// life, against the client connecting to the daemon's own port: to
// connect, and in a running session. The arm columns run the daemon and
// the senders built for linux/arm under qemu-arm-static; boa stays
// native, standing for the board's web server.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// handover holds the programs of the hand-over columns; "" where missing.
type handover struct {
	boa         string // boa, built from its source tarball
	lighttpd    string // Debian's lighttpd
	recipes     string // examples/deploy, for lighttpd's recipe
	senderC     string // examples/c/wsbridge-handover, static
	qemu        string // qemu-arm-static
	wsbridgeArm string // cmd/wsbridge for linux/arm, GOARM=7
	senderCArm  string // the C sender, static for arm
}

// sender is a hand-over program as a web server runs it.
type sender struct {
	web string // webBoa or webLighttpd
	// exec is, for boa, the command its sh wrapper cgi-bin/nph-ws execs;
	// "" when a program is missing. This boa's CGIEnv does not work, so
	// the socket is an argument rather than $WSBRIDGE_HANDOVER.
	exec func(b binaries, socket string) string
	// install is, for lighttpd, the environment the recipe's install.sh
	// takes, which says the form; nil when a program is missing. The
	// socket comes from the recipe's setenv.
	install func(b binaries) []string
}

// ready reports whether the programs snd's column runs are all there.
func (snd *sender) ready(b binaries) bool {
	if snd.web == webLighttpd {
		return b.lighttpd != "" && b.recipes != "" && snd.install(b) != nil
	}
	return b.boa != "" && snd.exec(b, "x") != ""
}

// The hand-over table's columns, which are its variants' names.
const (
	hoDirect    = "direct"
	hoBoaGo     = "boa+Go"
	hoBoaC      = "boa+C"
	hoLtGo      = "lighttpd+Go"
	hoLtC       = "lighttpd+C"
	hoArmDirect = "arm direct"
	hoArmBoaGo  = "arm boa+Go"
	hoArmBoaC   = "arm boa+C"
	boaCGIPath  = "/cgi-bin/nph-ws"
	boaTarball  = "boa-0.94.14-gnupg.tar.gz"

	webBoa       = "boa"
	webLighttpd  = "lighttpd"
	lighttpdBin  = "/usr/sbin/lighttpd" // Debian's, which the recipe is for
	lighttpdPath = "/ws/"               // the recipe's alias, PATH_INFO "/"
)

var (
	senderGo = &sender{web: webBoa, exec: func(b binaries, socket string) string {
		return command(b.wsbridge, "--handover-send="+socket)
	}}
	senderC = &sender{web: webBoa, exec: func(b binaries, socket string) string {
		return command(b.senderC, socket)
	}}
	senderGoArm = &sender{web: webBoa, exec: func(b binaries, socket string) string {
		return command(b.qemu, b.wsbridgeArm, "--handover-send="+socket)
	}}
	senderCArm = &sender{web: webBoa, exec: func(b binaries, socket string) string {
		return command(b.qemu, b.senderCArm, socket)
	}}
	// lighttpd's two forms as install.sh puts them: the wsbridge binary
	// by a symlink, or the C program. HANDOVER is set either way, so that
	// one in the benchmark's own environment does not choose the form.
	senderLtGo = &sender{web: webLighttpd, install: func(b binaries) []string {
		if b.wsbridge == "" {
			return nil
		}
		return []string{"WSBRIDGE=" + b.wsbridge, "HANDOVER="}
	}}
	senderLtC = &sender{web: webLighttpd, install: func(b binaries) []string {
		if b.senderC == "" {
			return nil
		}
		return []string{"HANDOVER=" + b.senderC}
	}}

	// handoverVariants are the daemons the hand-over scenario measures,
	// each column's the same but for the way clients reach it.
	handoverVariants = []*variant{
		handoverDaemon(hoDirect, false, nil),
		handoverDaemon(hoBoaGo, false, senderGo),
		handoverDaemon(hoBoaC, false, senderC),
		handoverDaemon(hoLtGo, false, senderLtGo),
		handoverDaemon(hoLtC, false, senderLtC),
		handoverDaemon(hoArmDirect, true, nil),
		handoverDaemon(hoArmBoaGo, true, senderGoArm),
		handoverDaemon(hoArmBoaC, true, senderCArm),
	}
)

// command quotes argv for sh; "" when a program in it is missing.
func command(argv ...string) string {
	var out []string
	for _, a := range argv {
		if a == "" {
			return ""
		}
		out = append(out, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return strings.Join(out, " ")
}

// handoverDaemon is a wsbridge that takes hand-overs and listens on its
// own port too: the direct column connects there, the others through a
// web server.
func handoverDaemon(name string, arm bool, snd *sender) *variant {
	return &variant{name: name, column: colWsbridge, sender: snd, argv: func(b binaries, port int) []string {
		daemon := []string{b.wsbridge}
		if arm {
			daemon = []string{b.qemu, b.wsbridgeArm}
		}
		if command(daemon...) == "" || snd != nil && !snd.ready(b) {
			return []string{""} // plan leaves it out
		}
		return append(daemon, "--handover="+handoverSocket(b.dir, port), "--port="+strconv.Itoa(port), "--address=127.0.0.1", "/bin/cat")
	}}
}

// handoverSocket is the hand-over socket of the daemon on port.
func handoverSocket(dir string, port int) string {
	return filepath.Join(dir, fmt.Sprintf("handover-%d.sock", port))
}

// runHandover measures the connection rate, then the time to the first
// echo of one client at a time, for half (at least 1 s) and a third of the
// -duration, then a running session for two thirds, so that eight columns
// fit the run.
func runHandover(ctx context.Context, b *bench, s *server) result {
	t := s.target()
	var web *server
	var webDir string
	if snd := s.v.sender; snd != nil {
		var err error
		if snd.web == webLighttpd {
			web, webDir, err = b.startLighttpd(ctx, s)
			t.path = lighttpdPath
		} else {
			web, webDir, err = b.startBoa(ctx, s)
			t.path = boaCGIPath
		}
		if err != nil {
			return result{err: err}
		}
		t.addr = web.addr
	}
	d := b.opts.duration
	res := connRate(ctx, b, s.pid, t, max(d/2, time.Second))
	if res.err == nil && !res.stalled {
		firstEcho(ctx, t, d/3, &res)
	}
	if res.err == nil && !res.stalled {
		relay := 0
		if web != nil {
			relay = web.pid
		}
		res.session = session(ctx, b, t, s.pid, relay, d/3)
		if err := res.session.err; err != nil && ctx.Err() == nil {
			fmt.Fprintf(b.progress, "wsbench: handover against %s, session: %v\n", s.v.name, err)
		}
	}
	// Both at once: each may take its time to end.
	var wg sync.WaitGroup
	if web != nil {
		wg.Go(func() { b.fleet.stop(web) })
	}
	b.fleet.stop(s)
	wg.Wait()
	if res.err != nil && web != nil {
		res.err = fmt.Errorf("%w\n  %s's error log ends: %s", res.err, s.v.sender.web,
			strings.ReplaceAll(strings.TrimSpace(logTail(filepath.Join(webDir, "error.log"))), "\n", "\n  "))
	}
	return res
}

// session measures a session already open through t: 64 B messages
// streamed on one connection, then round trips on another, each for d
// after the warm-up, metering the daemon pid and, when not 0, relay, the
// web server in front of it.
func session(ctx context.Context, b *bench, t target, pid, relay int, d time.Duration) *result {
	dial := func(readBuf int) ([]*wstest.Conn, error) {
		c, err := t.dial(cycleLimit, readBuf)
		if err != nil {
			return nil, fmt.Errorf("opening the session: %w", err)
		}
		return []*wstest.Conn{c}, nil
	}
	conns, err := dial(64 << 10)
	if err != nil {
		return &result{err: err}
	}
	// The daemon's writes over the whole stream, warm-up included, as
	// its messages are: whether it writes a handed-over connection as it
	// does its own.
	w0, err0 := procWrites(pid)
	res := streamOn(ctx, b, pid, relay, conns, wstest.OpText, echoPayload, d)
	if res.err != nil || res.stalled {
		return &res
	}
	if w1, err1 := procWrites(pid); err0 == nil && err1 == nil && res.msgs > 0 {
		res.writesPer = float64(w1-w0) / float64(res.msgs)
	}
	if conns, err = dial(4 << 10); err != nil {
		return &result{err: err}
	}
	rt := echoOn(ctx, b, pid, relay, conns, d)
	if rt.err != nil || rt.stalled {
		return &rt
	}
	res.p50, res.p99 = rt.p50, rt.p99
	return &res
}

// firstEcho runs whole connect cycles one at a time for d and sets res's
// p50 and p99 to the time from connect to the first echo, in µs.
func firstEcho(ctx context.Context, t target, d time.Duration, res *result) {
	payload := printable(echoPayload)
	frame := wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: payload})
	// Not a histogram: under emulation a cycle takes longer than its
	// 100 ms, and one at a time there are a few thousand at most.
	var took []time.Duration
	var lastErr error
	failed := 0
	// Past d only for a first sample, a slow cycle's under emulation.
	for end := time.Now().Add(d); (time.Now().Before(end) || len(took) == 0 && failed < 3) && ctx.Err() == nil; {
		dur, err := cycle(t, frame, payload)
		if err != nil {
			res.errs++
			failed++
			lastErr = err
			time.Sleep(10 * time.Millisecond)
			continue
		}
		took = append(took, dur)
	}
	if len(took) == 0 {
		res.err = fmt.Errorf("no connection completed one at a time: %v", lastErr)
		return
	}
	slices.Sort(took)
	// The histogram's rank: the time under which a fraction q fall.
	at := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))].Microseconds()) }
	res.p50, res.p99 = at(0.5), at(0.99)
}

// startBoa runs a boa whose nph-ws CGI hands connections to the daemon.
func (b *bench) startBoa(ctx context.Context, daemon *server) (*server, string, error) {
	bins := b.fleet.bins
	_, p, _ := net.SplitHostPort(daemon.addr)
	port, _ := strconv.Atoi(p)
	dir, err := webDir(bins.dir, "boa-")
	if err != nil {
		return nil, "", err
	}
	script := "#!/bin/sh\nexec " + daemon.v.sender.exec(bins, handoverSocket(bins.dir, port)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "cgi-bin", "nph-ws"), []byte(script), 0o755); err != nil {
		return nil, "", err
	}
	u, err := user.Current()
	if err != nil {
		return nil, "", err
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(dir, "boa.conf")
	v := &variant{name: "boa", column: colWsbridge,
		prepare: func(port int) error {
			return os.WriteFile(conf, []byte(boaConf(dir, port, u.Username, g.Name)), 0o644)
		},
		argv: func(b binaries, _ int) []string { return []string{b.boa, "-d", "-c", dir, "-f", conf} },
	}
	s, err := b.fleet.start(ctx, v)
	return s, dir, err
}

// webDir makes a web server's directory in the run's: www and cgi-bin.
func webDir(runDir, prefix string) (string, error) {
	dir, err := os.MkdirTemp(runDir, prefix)
	if err != nil {
		return "", err
	}
	for _, d := range []string{"www", "cgi-bin"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// startLighttpd runs a lighttpd configured as the recipe says, its
// wsbridge-handover CGI installed by the recipe's install.sh, handing
// connections to the daemon.
func (b *bench) startLighttpd(ctx context.Context, daemon *server) (*server, string, error) {
	bins := b.fleet.bins
	_, p, _ := net.SplitHostPort(daemon.addr)
	port, _ := strconv.Atoi(p)
	dir, err := webDir(bins.dir, "lighttpd-")
	if err != nil {
		return nil, "", err
	}
	cgiBin := filepath.Join(dir, "cgi-bin")
	recipe := filepath.Join(bins.recipes, "lighttpd")
	install := exec.CommandContext(ctx, "/bin/sh", filepath.Join(recipe, "install.sh"))
	install.Env = append(append(os.Environ(), "CGI_BIN="+cgiBin), daemon.v.sender.install(bins)...)
	if out, err := install.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("%s/install.sh: %w\n%s", recipe, err, out)
	}
	lines, err := os.ReadFile(filepath.Join(recipe, "lighttpd.conf"))
	if err != nil {
		return nil, "", err
	}
	// The recipe's lines with this run's paths, as a user fills in theirs.
	lines = []byte(strings.NewReplacer("/usr/lib/cgi-bin", cgiBin, "/run/wsbridge.sock", handoverSocket(bins.dir, port)).Replace(string(lines)))
	conf := filepath.Join(dir, "lighttpd.conf")
	v := &variant{name: "lighttpd", column: colWsbridge,
		prepare: func(port int) error {
			return os.WriteFile(conf, append([]byte(lighttpdConf(dir, port)), lines...), 0o644)
		},
		argv: func(b binaries, _ int) []string { return []string{b.lighttpd, "-D", "-f", conf} },
	}
	s, err := b.fleet.start(ctx, v)
	return s, dir, err
}

// lighttpdConf is what lighttpd needs besides the recipe's lines: a
// loopback port, a document root and an error log. As root it stays root.
func lighttpdConf(dir string, port int) string {
	return fmt.Sprintf(`server.port = %d
server.bind = "127.0.0.1"
server.document-root = "%[2]s/www"
server.errorlog = "%[2]s/error.log"
`, port, dir)
}

// boaConf is the smallest config boa runs the CGI with, on loopback. As
// root boa switches to User and Group; as anyone else it stays who it is.
func boaConf(dir string, port int, userName, group string) string {
	return fmt.Sprintf(`Port %d
Listen 127.0.0.1
User %s
Group %s
ErrorLog %[4]s/error.log
AccessLog %[4]s/access.log
DocumentRoot %[4]s/www
MimeTypes /dev/null
DefaultType text/plain
CGIPath /bin:/usr/bin
ScriptAlias /cgi-bin/ %[4]s/cgi-bin/
`, port, userName, group, dir)
}

// build finds or builds the hand-over columns' programs into dir, at the
// same time; it returns, by column, why one cannot run, and the notes that
// say so in full.
func (h *handover) build(ctx context.Context, dir string, progress io.Writer) (why map[string]string, notes []string) {
	why = map[string]string{}
	var mu sync.Mutex
	miss := func(short, long string, columns ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range columns {
			if why[c] == "" {
				why[c] = short
			}
		}
		notes = append(notes, long)
	}
	root, rootErr := moduleRoot()
	var wg sync.WaitGroup
	if tarball, err := findBoaTarball(root); err != nil {
		miss("no boa tarball", err.Error(), hoBoaGo, hoBoaC, hoArmBoaGo, hoArmBoaC)
	} else {
		fmt.Fprintf(progress, "wsbench: boa from %s (built once, then cached)\n", tarball)
		wg.Go(func() {
			var err error
			if h.boa, err = buildBoa(ctx, tarball, dir); err != nil {
				miss("boa build failed", err.Error(), hoBoaGo, hoBoaC, hoArmBoaGo, hoArmBoaC)
			}
		})
	}
	src := filepath.Join(root, "examples", "c", "wsbridge-handover.c")
	if rootErr != nil {
		miss("no C source", fmt.Sprintf("the C hand-over program: %v", rootErr), hoBoaC, hoLtC, hoArmBoaC)
	} else {
		wg.Go(func() {
			var err error
			if h.senderC, err = buildC(ctx, "cc", src, filepath.Join(dir, "wsbridge-handover")); err != nil {
				miss("C build failed", err.Error(), hoBoaC, hoLtC)
			}
		})
	}
	switch _, err := os.Stat(lighttpdBin); {
	case err != nil:
		miss("no lighttpd", lighttpdBin+" is not there (apt-get install -y lighttpd): the lighttpd columns are left empty", hoLtGo, hoLtC)
	case rootErr != nil:
		miss("no recipe", fmt.Sprintf("lighttpd's recipe, examples/deploy/lighttpd: %v", rootErr), hoLtGo, hoLtC)
	default:
		h.lighttpd, h.recipes = lighttpdBin, filepath.Join(root, "examples", "deploy")
	}
	if q, err := exec.LookPath("qemu-arm-static"); err != nil {
		miss("no qemu-arm-static", "qemu-arm-static is not installed (apt-get install -y qemu-user-static): the arm columns are left empty",
			hoArmDirect, hoArmBoaGo, hoArmBoaC)
	} else {
		h.qemu = q
		fmt.Fprintln(progress, "wsbench: building wsbridge for linux/arm (GOARCH=arm GOARM=7) and the C hand-over program with arm-linux-gnueabihf-gcc")
		wg.Go(func() {
			var err error
			if h.wsbridgeArm, err = buildWsbridgeFor(ctx, dir, "wsbridge-arm", "GOOS=linux", "GOARCH=arm", "GOARM=7"); err != nil {
				miss("arm build failed", err.Error(), hoArmDirect, hoArmBoaGo, hoArmBoaC)
			}
		})
		if rootErr == nil {
			wg.Go(func() {
				var err error
				if _, lookErr := exec.LookPath("arm-linux-gnueabihf-gcc"); lookErr != nil {
					miss("no arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-gcc is not installed (apt-get install -y gcc-arm-linux-gnueabihf): the arm C column is left empty", hoArmBoaC)
				} else if h.senderCArm, err = buildC(ctx, "arm-linux-gnueabihf-gcc", src, filepath.Join(dir, "wsbridge-handover-arm")); err != nil {
					miss("arm C build failed", err.Error(), hoArmBoaC)
				}
			})
		}
	}
	wg.Wait()
	return why, notes
}

// moduleRoot finds the repository from the working directory up, for
// the C sender's source and the third-party tarballs beside it.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/wsbridge/wsbridge\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not run inside the wsbridge repository")
		}
		dir = parent
	}
}

// findBoaTarball looks in $WSBRIDGE_THIRD_PARTY, else beside the
// repository in ../shared/third_party, else /work/shared/third_party.
func findBoaTarball(root string) (string, error) {
	var dirs []string
	if d := os.Getenv("WSBRIDGE_THIRD_PARTY"); d != "" {
		dirs = []string{d}
	} else {
		if root != "" {
			dirs = append(dirs, filepath.Join(root, "..", "shared", "third_party"))
		}
		dirs = append(dirs, "/work/shared/third_party")
	}
	for _, d := range dirs {
		p := filepath.Join(d, boaTarball)
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	return "", fmt.Errorf("%s is not in %s (set WSBRIDGE_THIRD_PARTY to its directory): the boa columns are left empty", boaTarball, strings.Join(dirs, " nor "))
}

// buildBoa returns boa built from tarball. The build takes from seconds
// to a minute, so it is kept in the user's cache, by the tarball's hash.
func buildBoa(ctx context.Context, tarball, dir string) (string, error) {
	data, err := os.ReadFile(tarball)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	var cached string
	if c, err := os.UserCacheDir(); err == nil {
		cached = filepath.Join(c, "wsbench", "boa-"+hex.EncodeToString(sum[:6]), "boa")
		if st, err := os.Stat(cached); err == nil && st.Mode().IsRegular() {
			return cached, nil
		}
	}
	work, err := os.MkdirTemp(dir, "boa-build-")
	if err != nil {
		return "", err
	}
	src := filepath.Join(work, strings.TrimSuffix(boaTarball, ".tar.gz"))
	for _, step := range [][]string{
		{"tar", "xzf", tarball, "-C", work},
		{"sh", "-c", "cd '" + src + "' && ./configure && make -j2"},
	} {
		if out, err := exec.CommandContext(ctx, step[0], step[1:]...).CombinedOutput(); err != nil {
			if len(out) > 400 {
				out = out[len(out)-400:]
			}
			return "", fmt.Errorf("building boa (apt-get install -y gcc make bison flex): %s: %w\n%s", strings.Join(step, " "), err, out)
		}
	}
	built := filepath.Join(src, "src", "boa")
	if cached == "" {
		return built, nil
	}
	// Into the cache by rename, so that no run sees half a file.
	tmp := cached + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return built, nil
	}
	if b, err := os.ReadFile(built); err != nil || os.WriteFile(tmp, b, 0o755) != nil || os.Rename(tmp, cached) != nil {
		os.Remove(tmp)
		return built, nil
	}
	return cached, nil
}

// buildC compiles the C hand-over program static, as make handover does.
func buildC(ctx context.Context, cc, src, out string) (string, error) {
	if b, err := exec.CommandContext(ctx, cc, "-O2", "-std=c99", "-static", "-s", "-o", out, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", cc, src, err, b)
	}
	return out, nil
}

// handoverRatios are the table's ratio columns: each web server column
// over the direct one of the same build.
var handoverRatios = [][2]string{{hoBoaGo, hoDirect}, {hoBoaC, hoDirect}, {hoLtGo, hoDirect}, {hoLtC, hoDirect},
	{hoArmBoaGo, hoArmDirect}, {hoArmBoaC, hoArmDirect}}

func handoverHeader() []string {
	h := []string{"hand-over", "better"}
	for _, v := range handoverVariants {
		h = append(h, v.name)
	}
	for _, r := range handoverRatios {
		h = append(h, r[0]+"/direct")
	}
	return h
}

// handoverReport fills the hand-over table when the scenario was asked
// for and something of it ran or was found missing.
func (b *bench) handoverReport(rep *report) {
	if !b.runs("handover") || !b.wants(colWsbridge) {
		return
	}
	ran := len(b.handoverWhy) > 0
	for _, v := range handoverVariants {
		ran = ran || len(b.results[key{"handover", v}]) > 0
	}
	if !ran {
		return
	}
	specs := []struct {
		rowSpec
		session bool // the value is of the result's session
		relay   bool // a web server's CPU: none in the direct columns
	}{
		{rowSpec: rowSpec{label: "connections/s (4 workers)", better: "higher", value: func(r result) float64 { return r.rate }}},
		{rowSpec: rowSpec{label: "first echo of a new connection, one at a time: p50 µs", better: "lower", value: func(r result) float64 { return r.p50 }}},
		{rowSpec: rowSpec{label: "first echo of a new connection, one at a time: p99 µs", better: "lower", value: func(r result) float64 { return r.p99 }}},
		{rowSpec: rowSpec{label: "session, one connection: stream 64 B, 64 in flight: msg/s", better: "higher", value: func(r result) float64 { return r.rate }}, session: true},
		{rowSpec: rowSpec{label: "session stream: daemon CPU µs/msg", better: "lower", value: func(r result) float64 { return r.cpuPerMsg }}, session: true},
		{rowSpec: rowSpec{label: "session stream: daemon write(2) calls per message", better: "lower", value: func(r result) float64 { return r.writesPer }}, session: true},
		{rowSpec: rowSpec{label: "session stream: web server CPU µs/msg (the relay)", better: "lower", value: func(r result) float64 { return r.relayPer }}, session: true, relay: true},
		{rowSpec: rowSpec{label: "session, another connection: echo 64 B round trip p50 µs", better: "lower", value: func(r result) float64 { return r.p50 }}, session: true},
		{rowSpec: rowSpec{label: "session: echo 64 B round trip p99 µs", better: "lower", value: func(r result) float64 { return r.p99 }}, session: true},
	}
	for _, spec := range specs {
		spec.scenario = "handover"
		r := row{spec: spec.rowSpec, cells: map[string]cell{}}
		for _, v := range handoverVariants {
			if why := b.handoverWhy[v.name]; why != "" {
				r.cells[v.name] = cell{text: "n/a (" + why + ")"}
				continue
			}
			if spec.relay && v.sender == nil {
				r.cells[v.name] = cell{text: "n/a"}
				continue
			}
			rs := b.results[key{"handover", v}]
			if spec.session {
				rs = sessions(rs)
			}
			r.cells[v.name] = median(rs, spec.value)
		}
		rep.handover = append(rep.handover, r)
	}
	rep.handoverNotes = append([]string{
		"hand-over: each column is the same wsbridge --handover=SOCKET --port=PORT /bin/cat; direct clients connect to its port, the boa ones to boa's " + boaCGIPath +
			", an nph- CGI that hands the client's socket over (protocol v1) and exits, the lighttpd ones to lighttpd's " + lighttpdPath +
			", a CGI that hands over lighttpd's two pipes of the connection and exits. Connections/s is the connrate cycle for half the -duration (at least 1 s); " +
			"first echo is connect, handshake and one 64 B echo, one client at a time for a third of it. Ratios are a web server column's value over its build's direct one.",
		"session: a connection opened through each path, then 64 B messages streamed on it, 64 in flight, for a third of the -duration; then 64 B round trips, one at a time, " +
			"on a second connection for as long. Daemon CPU and write(2) calls (/proc/PID/io's syscw) are wsbridge's; web server CPU is boa's or lighttpd's over the stream, per message echoed. " +
			"boa gave the socket away and is out of the path: its session should match the direct one, and where it does not the daemon's own writes say why. " +
			"lighttpd relays the pipes: every byte is copied once more each way, by lighttpd.",
		"lighttpd: " + lighttpdBin + " (Debian's), its config the lines of examples/deploy/lighttpd/lighttpd.conf with this run's cgi-bin and socket, " +
			"its CGI put there by the recipe's install.sh: the wsbridge binary by a symlink (Go) or the C program, the socket from setenv. It runs natively only.",
		"boa " + strings.TrimSuffix(boaTarball, ".tar.gz") + " runs natively in every column, standing for the board's web server. Its CGIEnv does not work, " +
			"so nph-ws is an sh wrapper that execs the sender with the socket as an argument: one exec more than a board with CGIEnv (Go) or a compiled-in socket (C) pays.",
		"arm: wsbridge (GOARCH=arm GOARM=7) and both senders (C: arm-linux-gnueabihf-gcc -static) run under qemu-arm-static, boa and /bin/cat natively; " +
			"emulation makes arm's absolute figures mean little: read its ratios.",
		"websocketd has no hand-over: it has no column here.",
	}, b.handoverNotes...)
}

// sessions are the running sessions of rs, a failed or stalled run's
// outcome where it had none.
func sessions(rs []result) []result {
	out := make([]result, 0, len(rs))
	for _, r := range rs {
		switch {
		case r.session != nil:
			out = append(out, *r.session)
		case r.err == nil && !r.stalled:
			out = append(out, result{err: errors.New("no session")})
		default:
			out = append(out, r)
		}
	}
	return out
}

func (rep *report) handoverCells() [][]string {
	var rows [][]string
	for _, r := range rep.handover {
		out := []string{r.spec.label, r.spec.better}
		for _, v := range handoverVariants {
			if c := r.cells[v.name]; c.ok {
				out = append(out, num(c.v))
			} else {
				out = append(out, c.text)
			}
		}
		for _, q := range handoverRatios {
			out = append(out, r.ratio(q[0], q[1]))
		}
		rows = append(rows, out)
	}
	return rows
}
