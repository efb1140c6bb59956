package main

// The hand-over scenario (issue 11): what a WebSocket connection costs
// when boa, the board's web server, runs the hand-over CGI for it, which
// passes the client's socket to a wsbridge --handover daemon, against the
// client connecting to the daemon's own port. The arm columns run the
// daemon and the senders built for linux/arm under qemu-arm-static; boa
// stays native, standing for the board's web server.

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
	senderC     string // examples/c/wsbridge-handover, static
	qemu        string // qemu-arm-static
	wsbridgeArm string // cmd/wsbridge for linux/arm, GOARM=7
	senderCArm  string // the C sender, static for arm
}

// sender is a hand-over program as boa runs it: the command its sh
// wrapper cgi-bin/nph-ws execs. This boa's CGIEnv does not work, so the
// socket is an argument rather than $WSBRIDGE_HANDOVER.
type sender struct {
	exec func(b binaries, socket string) string // "" when a program is missing
}

// The hand-over table's columns, which are its variants' names.
const (
	hoDirect    = "direct"
	hoBoaGo     = "boa+Go"
	hoBoaC      = "boa+C"
	hoArmDirect = "arm direct"
	hoArmBoaGo  = "arm boa+Go"
	hoArmBoaC   = "arm boa+C"
	boaCGIPath  = "/cgi-bin/nph-ws"
	boaTarball  = "boa-0.94.14-gnupg.tar.gz"
)

var (
	senderGo = &sender{exec: func(b binaries, socket string) string {
		return command(b.wsbridge, "--handover-send="+socket)
	}}
	senderC = &sender{exec: func(b binaries, socket string) string {
		return command(b.senderC, socket)
	}}
	senderGoArm = &sender{exec: func(b binaries, socket string) string {
		return command(b.qemu, b.wsbridgeArm, "--handover-send="+socket)
	}}
	senderCArm = &sender{exec: func(b binaries, socket string) string {
		return command(b.qemu, b.senderCArm, socket)
	}}

	// handoverVariants are the daemons the hand-over scenario measures,
	// each column's the same but for the way clients reach it.
	handoverVariants = []*variant{
		handoverDaemon(hoDirect, false, nil),
		handoverDaemon(hoBoaGo, false, senderGo),
		handoverDaemon(hoBoaC, false, senderC),
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
// own port too: the direct column connects there, the others through boa.
func handoverDaemon(name string, arm bool, snd *sender) *variant {
	return &variant{name: name, column: colWsbridge, sender: snd, argv: func(b binaries, port int) []string {
		daemon := []string{b.wsbridge}
		if arm {
			daemon = []string{b.qemu, b.wsbridgeArm}
		}
		if command(daemon...) == "" || snd != nil && (b.boa == "" || snd.exec(b, "x") == "") {
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
// -duration, so that six columns fit the run.
func runHandover(ctx context.Context, b *bench, s *server) result {
	t := target{addr: s.addr}
	var boa *server
	var boaDir string
	if s.v.sender != nil {
		var err error
		if boa, boaDir, err = b.startBoa(ctx, s); err != nil {
			return result{err: err}
		}
		t = target{addr: boa.addr, path: boaCGIPath}
	}
	d := b.opts.duration
	res := connRate(ctx, b, s.pid, t, max(d/2, time.Second))
	if res.err == nil && !res.stalled {
		firstEcho(ctx, t, d/3, &res)
	}
	// Both at once: each may take its time to end.
	var wg sync.WaitGroup
	if boa != nil {
		wg.Go(func() { b.fleet.stop(boa) })
	}
	b.fleet.stop(s)
	wg.Wait()
	if res.err != nil && boa != nil {
		res.err = fmt.Errorf("%w\n  boa's error log ends: %s", res.err,
			strings.ReplaceAll(strings.TrimSpace(logTail(filepath.Join(boaDir, "error.log"))), "\n", "\n  "))
	}
	return res
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
	dir, err := os.MkdirTemp(bins.dir, "boa-")
	if err != nil {
		return nil, "", err
	}
	for _, d := range []string{"www", "cgi-bin"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, "", err
		}
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
		miss("no C source", fmt.Sprintf("the C hand-over program: %v", rootErr), hoBoaC, hoArmBoaC)
	} else {
		wg.Go(func() {
			var err error
			if h.senderC, err = buildC(ctx, "cc", src, filepath.Join(dir, "wsbridge-handover")); err != nil {
				miss("C build failed", err.Error(), hoBoaC)
			}
		})
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

// handoverRatios are the table's ratio columns: each boa column over the
// direct one of the same build.
var handoverRatios = [][2]string{{hoBoaGo, hoDirect}, {hoBoaC, hoDirect}, {hoArmBoaGo, hoArmDirect}, {hoArmBoaC, hoArmDirect}}

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
	specs := []rowSpec{
		{label: "connections/s (4 workers)", better: "higher", value: func(r result) float64 { return r.rate }},
		{label: "first echo of a new connection, one at a time: p50 µs", better: "lower", value: func(r result) float64 { return r.p50 }},
		{label: "first echo of a new connection, one at a time: p99 µs", better: "lower", value: func(r result) float64 { return r.p99 }},
	}
	for _, spec := range specs {
		spec.scenario = "handover"
		r := row{spec: spec, cells: map[string]cell{}}
		for _, v := range handoverVariants {
			if why := b.handoverWhy[v.name]; why != "" {
				r.cells[v.name] = cell{text: "n/a (" + why + ")"}
				continue
			}
			r.cells[v.name] = median(b.results[key{"handover", v}], spec.value)
		}
		rep.handover = append(rep.handover, r)
	}
	rep.handoverNotes = append([]string{
		"hand-over: each column is the same wsbridge --handover=SOCKET --port=PORT /bin/cat; direct clients connect to its port, the boa ones to boa's " + boaCGIPath +
			", an nph- CGI that hands the client's socket over (protocol v1) and exits. Connections/s is the connrate cycle for half the -duration (at least 1 s); " +
			"first echo is connect, handshake and one 64 B echo, one client at a time for a third of it. Ratios are a boa column's value over its build's direct one.",
		"boa " + strings.TrimSuffix(boaTarball, ".tar.gz") + " runs natively in every column, standing for the board's web server. Its CGIEnv does not work, " +
			"so nph-ws is an sh wrapper that execs the sender with the socket as an argument: one exec more than a board with CGIEnv (Go) or a compiled-in socket (C) pays.",
		"arm: wsbridge (GOARCH=arm GOARM=7) and both senders (C: arm-linux-gnueabihf-gcc -static) run under qemu-arm-static, boa and /bin/cat natively; " +
			"emulation makes arm's absolute figures mean little: read its ratios.",
		"websocketd has no hand-over: it has no column here.",
	}, b.handoverNotes...)
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
