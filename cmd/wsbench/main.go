// Command wsbench measures wsbridge against websocketd and against the
// floor, an echo server with no child process, on this machine: echo
// latency, streamed message rates, server CPU per message, connection rate,
// memory per idle connection, the same over wss (both servers started with
// --ssl, see wss.go), and what a connection handed over by boa's or
// lighttpd's CGI costs against one to wsbridge's own port, to open and
// while it runs. Each server runs as its
// own process on a free loopback port, a fresh one for every measurement;
// the servers take turns within each scenario, every measurement is
// repeated and the median is reported, so ratios come from the same run
// under the same noise.
//
//	go run ./cmd/wsbench                  # the full run, a few minutes
//	go run ./cmd/wsbench -quick           # a smoke run
//	go run ./cmd/wsbench -only echo,idle -markdown bench.md
//	go run ./cmd/wsbench -only idle,wss-connrate,wss-stream64,wss-stream64k,wss-idle
//
// It builds wsbridge from the repository unless given -wsbridge, and runs
// websocketd from /usr/bin (apt-get install -y websocketd) unless given
// -websocketd. The floor is wsbench itself, started as wsbench -serve-floor.
// The handover scenario builds boa from third_party's tarball (cached in
// the user's cache directory), the C sender with cc, and, where
// qemu-arm-static is, both for arm; it runs Debian's /usr/sbin/lighttpd
// with the lines of examples/deploy/lighttpd.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	o, floorPort, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(2)
	case floorPort == -2:
		if err := broadcastChild(); err != nil {
			fmt.Fprintln(os.Stderr, "wsbench -broadcast-child:", err)
			os.Exit(1)
		}
		return
	case floorPort >= 0:
		// serveFloor returns only when it cannot go on.
		fmt.Fprintln(os.Stderr, "wsbench -serve-floor:", serveFloor(floorPort))
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		stop()
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted; every server it started is stopped")
		}
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line. floorPort is the port of the hidden
// -serve-floor mode, -2 for the hidden -broadcast-child mode, or -1.
func parseFlags(args []string, out io.Writer) (o options, floorPort int, err error) {
	fs := flag.NewFlagSet("wsbench", flag.ContinueOnError)
	fs.SetOutput(out)
	var only, servers string
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "length of each measurement")
	fs.IntVar(&o.repeat, "repeat", 3, "measurements per scenario and server; the median is reported")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: -duration 1s -repeat 1, 200 idle connections")
	fs.StringVar(&only, "only", "", "comma-separated scenarios to run: "+strings.Join(scenarioNames(), ","))
	fs.StringVar(&servers, "servers", "", "comma-separated servers to run: "+strings.Join(columns, ","))
	fs.IntVar(&o.idleConns, "idle-conns", 1000, "connections the idle scenario holds open")
	fs.IntVar(&o.sharedConns, "shared-conns", 10000, "connections the idle-shared scenario holds open to one shared child")
	fs.IntVar(&o.broadcastClients, "broadcast-clients", 1000, "clients of the broadcast scenario")
	fs.IntVar(&o.pinnedConns, "pinned-conns", 300, "clients of the pinned scenario, each holding an unfinished 1 MiB message")
	fs.IntVar(&o.broadcastRound, "broadcast-burst", 2000, "messages per burst in the broadcast scenario")
	fs.StringVar(&o.markdown, "markdown", "", "also write the results as Markdown to `FILE`")
	fs.StringVar(&o.wsbridge, "wsbridge", "", "wsbridge binary to measure (`PATH`; default: build ./cmd/wsbridge)")
	fs.StringVar(&o.baseline, "baseline", "", "a second wsbridge binary (`PATH`), measured in turn with the first wherever it is, as the baseline column, with the spread of the repeats to judge noise by")
	fs.StringVar(&o.websocketd, "websocketd", "/usr/bin/websocketd", "websocketd binary to compare with (`PATH`)")
	serve := fs.Bool("serve-floor", false, "")
	port := fs.Int("port", 0, "")
	child := fs.Bool("broadcast-child", false, "")
	hidden := map[string]bool{"serve-floor": true, "port": true, "broadcast-child": true}
	fs.Usage = func() {
		fmt.Fprint(out, "Usage: wsbench [flags]\n\nMeasures wsbridge against websocketd and an echo server with no child.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if hidden[f.Name] {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  -%s %s\n    \t%s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	if err := fs.Parse(args); err != nil {
		return o, -1, err
	}
	if fs.NArg() > 0 {
		return o, -1, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *serve {
		return o, *port, nil
	}
	if *child {
		return o, -2, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["duration"] {
			o.duration = time.Second
		}
		if !set["repeat"] {
			o.repeat = 1
		}
		if !set["idle-conns"] {
			o.idleConns = 200
		}
		if !set["shared-conns"] {
			o.sharedConns = 500
		}
		if !set["broadcast-clients"] {
			o.broadcastClients = 100
		}
		if !set["pinned-conns"] {
			o.pinnedConns = 50
		}
	}
	if o.duration <= 0 || o.duration > 10*time.Minute || o.repeat < 1 || o.repeat > 100 || o.idleConns < 1 || o.idleConns > 50000 ||
		o.sharedConns < 1 || o.sharedConns > 50000 || o.broadcastClients < 1 || o.broadcastClients > 10000 || o.broadcastRound < 1 || o.broadcastRound > 1000000 ||
		o.pinnedConns < 1 || o.pinnedConns > 10000 {
		return o, -1, errors.New("want 0 < -duration ≤ 10m, 1 ≤ -repeat ≤ 100, 1 ≤ -idle-conns, -shared-conns ≤ 50000, 1 ≤ -broadcast-clients ≤ 10000, 1 ≤ -broadcast-burst ≤ 1000000, 1 ≤ -pinned-conns ≤ 10000")
	}
	if o.only, err = list(only, scenarioNames(), "-only"); err != nil {
		return o, -1, err
	}
	if o.servers, err = list(servers, columns, "-servers"); err != nil {
		return o, -1, err
	}
	if o.baseline != "" {
		if o.baseline, err = checkBinary(o.baseline); err != nil {
			return o, -1, fmt.Errorf("-baseline: %w", err)
		}
		if len(o.servers) > 0 && !slices.Contains(o.servers, colWsbridge) {
			return o, -1, errors.New("-baseline is compared with wsbridge: -servers must include wsbridge")
		}
	}
	o.warmup = min(300*time.Millisecond, o.duration/3)
	o.stallAfter = 1500 * time.Millisecond
	o.settleMin, o.settleMax = 2*time.Second, 10*time.Second
	if o.quick {
		o.stallAfter = time.Second
		o.settleMin, o.settleMax = 500*time.Millisecond, 3*time.Second
	}
	o.args = args
	return o, -1, nil
}

// checkBinary returns path made absolute, so that a bare name is not
// looked up on $PATH, once it is known to be an executable file.
func checkBinary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	switch {
	case err != nil:
		return "", err
	case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

// list splits a comma-separated flag and checks each name is known.
func list(s string, known []string, flagName string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		ok := false
		for _, k := range known {
			ok = ok || k == name
		}
		if !ok {
			return nil, fmt.Errorf("%s: unknown name %q (want %s)", flagName, name, strings.Join(known, ","))
		}
		out = append(out, name)
	}
	return out, nil
}
