package main

// The benchmark's plan and its runner: which scenarios measure which
// servers, and the interleaved loop that runs each measurement on a fresh
// server process.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// options is what the command line asks for; parseFlags fills every
// field, so zero values are not used as defaults here.
type options struct {
	duration         time.Duration // per measurement
	warmup           time.Duration // load before each measurement starts
	stallAfter       time.Duration // no progress this long: the run stalled
	settleMin        time.Duration // idle: wait at least this for RSS to settle
	settleMax        time.Duration // idle: and at most this
	repeat           int           // measurements per scenario and server; the median is reported
	idleConns        int           // connections held open by the idle scenario
	sharedConns      int           // ... by the idle-shared scenario
	pinnedConns      int           // clients of the pinned scenario, each holding an unfinished 1 MiB message
	broadcastClients int           // clients of the broadcast scenario
	broadcastRound   int           // messages per broadcast burst
	only             []string      // scenario names; nil: all
	servers          []string      // columns to run; nil: all
	markdown         string        // also write the results here; "": don't
	wsbridge         string        // prebuilt wsbridge; "": build one
	baseline         string        // a second wsbridge, absolute, measured beside the first; "": none
	websocketd       string        // websocketd to compare with
	quick            bool
	args             []string // the command line, for the report
}

// scenario is one kind of measurement and the servers it runs against.
type scenario struct {
	name     string
	about    string
	variants []*variant
	run      func(ctx context.Context, b *bench, s *server) result
}

var scenarios = []*scenario{
	{name: "echo", about: "64 B text round trips, 4 connections",
		variants: []*variant{vWsbridge, vWebsocketd, vFloor}, run: runEcho},
	{name: "stream64", about: "64 B text messages, 64 in flight on each of 4 connections",
		variants: []*variant{vWsbridge, vWebsocketd, vFloor},
		run:      func(ctx context.Context, b *bench, s *server) result { return runStream(ctx, b, s, 64) }},
	{name: "stream64k", about: "64 KiB messages (lines; len32 binary for wsbridge too), 64 in flight on each of 4 connections",
		variants: []*variant{vWsbridge, vWebsocketd, vFloor, vWsbridgeLen32},
		run:      func(ctx context.Context, b *bench, s *server) result { return runStream(ctx, b, s, 64<<10) }},
	{name: "connrate", about: "connect, handshake, one echo, closing handshake; 4 workers",
		variants: []*variant{vWsbridge, vWebsocketd, vFloor}, run: runConnRate},
	{name: "handover", about: "connection rate, time to the first echo and a running session, direct and through boa's and lighttpd's hand-over CGIs (wsbridge only)",
		variants: handoverVariants, run: runHandover},
	{name: "idle", about: "RSS and threads with idle connections open",
		variants: []*variant{vWsbridge, vWebsocketd, vFloor}, run: runIdle},
	{name: "idle-shared", about: "RSS and threads with idle connections to one --shared child (wsbridge only: websocketd has no shared mode)",
		variants: []*variant{vWsbridgeShared}, run: runIdleShared},
	{name: "pinned", about: "RSS while clients of one --shared child each hold an unfinished 1 MiB message, and after they leave (wsbridge only)",
		variants: []*variant{vWsbridgeShared}, run: runPinned},
	{name: "broadcast", about: "bursts of 64 B messages from one --shared child to many clients (wsbridge only)",
		variants: []*variant{vWsbridgeBroadcast}, run: runBroadcast},
	// wss: the same runs, the servers started with --ssl (see wss.go).
	{name: "wss-connrate", about: "wss: connect, TLS handshake (full), upgrade, one echo, closing handshake; 4 workers",
		variants: []*variant{vWsbridgeWSS, vWebsocketdWSS}, run: runConnRate},
	{name: "wss-stream64", about: "wss: 64 B text messages, 64 in flight on each of 4 connections",
		variants: []*variant{vWsbridgeWSS, vWebsocketdWSS},
		run:      func(ctx context.Context, b *bench, s *server) result { return runStream(ctx, b, s, 64) }},
	{name: "wss-stream64k", about: "wss: 64 KiB line messages, 64 in flight on each of 4 connections",
		variants: []*variant{vWsbridgeWSS, vWebsocketdWSS},
		run:      func(ctx context.Context, b *bench, s *server) result { return runStream(ctx, b, s, 64<<10) }},
	{name: "wss-idle", about: "wss: RSS and threads with idle connections open",
		variants: []*variant{vWsbridgeWSS, vWebsocketdWSS}, run: runIdle},
}

// scenarioNamed returns the scenario called name, or nil.
func scenarioNamed(name string) *scenario {
	for _, s := range scenarios {
		if s.name == name {
			return s
		}
	}
	return nil
}

func scenarioNames() []string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return names
}

// key names one cell of measurements.
type key struct {
	scenario string
	v        *variant
}

// bench is one whole benchmark run.
type bench struct {
	opts     options
	fleet    *fleet
	results  map[key][]result
	progress io.Writer
	skipped  []string // why a server was left out
	// handoverWhy says, by variant name, why a hand-over column is empty.
	handoverWhy   map[string]string
	handoverNotes []string // the same in full
	// refused holds the variants that refused their flags at start (a
	// wsbridge without --ssl), with why, short, for their n/a cells.
	refused   map[*variant]string
	notes     []string // about this run's servers, for the report
	loadStart string   // load average when the run began
}

// run measures, prints the table to out (progress to progress), writes the
// Markdown file if asked, and returns the report.
func run(ctx context.Context, o options, out, progress io.Writer) (*report, error) {
	if lim, err := raiseFileLimit(); err != nil {
		fmt.Fprintf(progress, "wsbench: cannot raise the open-file limit: %v\n", err)
	} else if need := uint64(max(o.idleConns*5, o.sharedConns+64)); lim < need {
		fmt.Fprintf(progress, "wsbench: open-file limit %d may be too low for %d idle connections\n", lim, max(o.idleConns, o.sharedConns))
	}
	dir, err := os.MkdirTemp("", "wsbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	b := &bench{opts: o, results: map[key][]result{}, refused: map[*variant]string{}, progress: progress, loadStart: loadAverage()}
	bins, err := b.binaries(ctx, dir)
	if err != nil {
		return nil, err
	}
	plan := b.plan(bins)
	if len(plan) == 0 {
		return nil, errors.New("nothing to run: check -only and -servers")
	}
	var clientTLS *tls.Config
	if needsTLS(plan) {
		if bins.cert, bins.key, clientTLS, err = newTLS(dir); err != nil {
			return nil, err
		}
	}
	b.fleet = newFleet(bins, dir, clientTLS)
	defer b.fleet.stopAll()
	plan = b.checkTLS(ctx, plan)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	total := 0
	for _, sc := range plan {
		total += len(sc.variants) * o.repeat
	}
	fmt.Fprintf(progress, "wsbench: %d measurements of %v each (+ warm-up, start and stop), interleaved by scenario\n", total, o.duration)
	done := 0
	for _, sc := range plan {
		for rep := range o.repeat {
			// Round-robin, starting with a different server each time, so
			// that no server always follows the same one.
			for i := range sc.variants {
				v := sc.variants[(i+rep)%len(sc.variants)]
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				began := time.Now()
				res := b.measure(ctx, sc, v)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				done++
				b.results[key{sc.name, v}] = append(b.results[key{sc.name, v}], res)
				fmt.Fprintf(progress, "[%2d/%d] %-9s %d/%d  %-15s %s  (%.1fs)\n", done, total, sc.name, rep+1, o.repeat,
					v.name, res.summary(sc.name), time.Since(began).Seconds())
			}
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep := b.report()
	rep.writeText(out)
	if o.markdown != "" {
		f, err := os.Create(o.markdown)
		if err != nil {
			return rep, err
		}
		rep.writeMarkdown(f)
		if err := f.Close(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// binaries finds or builds what the selected servers run.
func (b *bench) binaries(ctx context.Context, dir string) (binaries, error) {
	var bins binaries
	self, err := os.Executable()
	if err != nil {
		return bins, err
	}
	bins.self = self
	bins.dir = dir
	if b.wants(colWsbridge) {
		bins.wsbridge = b.opts.wsbridge
		if bins.wsbridge == "" {
			fmt.Fprintln(b.progress, "wsbench: building wsbridge (go build -trimpath ./cmd/wsbridge)")
			if bins.wsbridge, err = buildWsbridge(ctx, dir); err != nil {
				return bins, err
			}
		}
	}
	if b.wants(colBaseline) {
		bins.baseline = b.opts.baseline
	}
	if b.wants(colWsbridge) && b.runs("handover") {
		b.handoverWhy, b.handoverNotes = bins.handover.build(ctx, dir, b.progress)
	}
	if b.wants(colWebsocketd) {
		bins.websocketd = findWebsocketd(b.opts.websocketd)
		if bins.websocketd == "" {
			msg := fmt.Sprintf("%v; its column is left empty", errNoWebsocketd)
			b.skipped = append(b.skipped, msg)
			fmt.Fprintf(b.progress, "\n*** wsbench: %s ***\n\n", msg)
		}
	}
	return bins, nil
}

// wants reports whether the command line selects a column.
func (b *bench) wants(column string) bool {
	if column == colBaseline {
		return b.opts.baseline != "" && b.wants(colWsbridge)
	}
	return len(b.opts.servers) == 0 || slices.Contains(b.opts.servers, column)
}

// runs reports whether the command line selects a scenario.
func (b *bench) runs(scenario string) bool {
	return len(b.opts.only) == 0 || slices.Contains(b.opts.only, scenario)
}

// plan returns the selected scenarios, each with the variants that can run.
func (b *bench) plan(bins binaries) []*scenario {
	var plan []*scenario
	for _, sc := range scenarios {
		if !b.runs(sc.name) {
			continue
		}
		s := *sc
		s.variants = nil
		for _, v := range sc.variants {
			// The baseline twin right after its wsbridge variant: both
			// take their turn in every round, under the same noise.
			for _, w := range []*variant{v, baselineTwins[v]} {
				if w != nil && b.wants(w.column) && w.argv(bins, 0)[0] != "" {
					s.variants = append(s.variants, w)
				}
			}
		}
		if len(s.variants) > 0 {
			plan = append(plan, &s)
		}
	}
	return plan
}

// measure runs one scenario against a fresh server process, so that no
// measurement inherits another's memory, goroutines or children.
func (b *bench) measure(ctx context.Context, sc *scenario, v *variant) result {
	s, err := b.fleet.start(ctx, v)
	if err != nil {
		return result{err: err}
	}
	res := sc.run(ctx, b, s)
	b.fleet.stop(s)
	if res.err != nil && ctx.Err() == nil {
		fmt.Fprintf(b.progress, "wsbench: %s against %s: %v\n  server log ends: %s\n", sc.name, v.name, res.err,
			strings.ReplaceAll(strings.TrimSpace(logTail(s.log)), "\n", "\n  "))
	}
	return res
}

// summary is the progress line's account of one result.
func (r result) summary(scenario string) string {
	switch {
	case r.err != nil:
		return "ERROR: " + r.err.Error()
	case r.stalled:
		return fmt.Sprintf("STALLED after %d messages", r.msgs)
	}
	switch scenario {
	case "echo":
		return fmt.Sprintf("%s msg/s  p50 %s µs  p99 %s µs", num(r.rate), num(r.p50), num(r.p99))
	case "stream64", "stream64k", "wss-stream64", "wss-stream64k":
		return fmt.Sprintf("%s msg/s  %s MB/s  server %s µs/msg  wsbench %s µs/msg", num(r.rate), num(r.mbps), num(r.cpuPerMsg), num(r.genPerMsg))
	case "connrate", "handover", "wss-connrate":
		s := fmt.Sprintf("%s conn/s  server %s µs/conn", num(r.rate), num(r.cpuPerMsg))
		if scenario == "handover" {
			s = fmt.Sprintf("%s conn/s  first echo p50 %s µs  p99 %s µs", num(r.rate), num(r.p50), num(r.p99))
			if ss := r.session; ss != nil && ss.err == nil && !ss.stalled {
				s += fmt.Sprintf("  session %s msg/s, relay %s µs/msg, rt p50 %s µs", num(ss.rate), num(ss.relayPer), num(ss.p50))
			}
		}
		if r.errs > 0 {
			s += fmt.Sprintf("  %d failed", r.errs)
		}
		return s
	case "idle", "idle-shared", "wss-idle":
		return fmt.Sprintf("%s KiB/conn  %s threads", num(r.kibPer), num(r.threads))
	case "pinned":
		return fmt.Sprintf("RSS %s MiB before, %s MiB held, %s MiB after; %d clients held, %d refused", num(r.rssBefore), num(r.rssHeld), num(r.rssLeft), r.msgs, r.errs)
	case "broadcast":
		return fmt.Sprintf("%s deliveries/s  server %s µs/delivery  %s write syscalls/delivery", num(r.rate), num(r.cpuPerMsg), num(r.writesPer))
	}
	return ""
}
