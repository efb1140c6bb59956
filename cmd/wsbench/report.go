package main

// The report: one row per measurement, a column per server, the medians of
// the repeats, the ratios, and the project's targets checked against the
// same run.

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rowSpec says how to fill one row of the table.
type rowSpec struct {
	label    string
	better   string // "higher" or "lower"
	scenario string
	len32    bool // the wsbridge cell is the len32 variant; websocketd has none
	value    func(result) float64
	// ratioOf, when not nil, makes the row of two others, by label
	// prefix: each server's median in the first over its median in the
	// second (value is nil then).
	ratioOf []string
}

func rowSpecs(o options) []rowSpec {
	idleConns := o.idleConns
	rate := func(r result) float64 { return r.rate }
	cpu := func(r result) float64 { return r.cpuPerMsg }
	gen := func(r result) float64 { return r.genPerMsg }
	mbps := func(r result) float64 { return r.mbps }
	kib := func(r result) float64 { return r.kibPer }
	return []rowSpec{
		{"echo 64 B, 4 conns: msg/s", "higher", "echo", false, rate, nil},
		{"echo 64 B: p50 round trip µs", "lower", "echo", false, func(r result) float64 { return r.p50 }, nil},
		{"echo 64 B: p99 round trip µs", "lower", "echo", false, func(r result) float64 { return r.p99 }, nil},
		{"stream 64 B, 64 in flight x4: msg/s", "higher", "stream64", false, rate, nil},
		{"stream 64 B: server CPU µs/msg", "lower", "stream64", false, cpu, nil},
		{"stream 64 B: wsbench CPU µs/msg", "lower", "stream64", false, gen, nil},
		{"stream 64 KiB lines, 64 in flight x4: msg/s", "higher", "stream64k", false, rate, nil},
		{"stream 64 KiB lines: MB/s", "higher", "stream64k", false, mbps, nil},
		{"stream 64 KiB lines: server CPU µs/msg", "lower", "stream64k", false, cpu, nil},
		{"stream 64 KiB lines: wsbench CPU µs/msg", "lower", "stream64k", false, gen, nil},
		{"stream 64 KiB len32 binary: msg/s (info)", "higher", "stream64k", true, rate, nil},
		{"stream 64 KiB len32 binary: MB/s (info)", "higher", "stream64k", true, mbps, nil},
		{"connections/s (4 workers)", "higher", "connrate", false, rate, nil},
		{"connections: server CPU µs/conn", "lower", "connrate", false, cpu, nil},
		{fmt.Sprintf("idle: server RSS KiB/conn at %d conns", idleConns), "lower", "idle", false, kib, nil},
		{fmt.Sprintf("idle: server threads at %d conns", idleConns), "lower", "idle", false, func(r result) float64 { return r.threads }, nil},
		{fmt.Sprintf("shared idle: server RSS KiB/conn at %d conns", o.sharedConns), "lower", "idle-shared", false, kib, nil},
		{fmt.Sprintf("shared idle: server threads at %d conns", o.sharedConns), "lower", "idle-shared", false, func(r result) float64 { return r.threads }, nil},
		{fmt.Sprintf("pinned: server RSS MiB, %d clients each holding an unfinished 1 MiB message", o.pinnedConns), "lower", "pinned", false, func(r result) float64 { return r.rssHeld }, nil},
		{"pinned: server RSS MiB once they have left", "lower", "pinned", false, func(r result) float64 { return r.rssLeft }, nil},
		{fmt.Sprintf("broadcast 64 B to %d clients: deliveries/s", o.broadcastClients), "higher", "broadcast", false, rate, nil},
		{"broadcast: server CPU µs/delivery", "lower", "broadcast", false, cpu, nil},
		{"broadcast: write syscalls per client per message", "lower", "broadcast", false, func(r result) float64 { return r.writesPer }, nil},
		{"wss handshakes/s (4 workers: TLS, upgrade, one echo, close)", "higher", "wss-connrate", false, rate, nil},
		{"wss handshakes: server CPU µs/conn", "lower", "wss-connrate", false, cpu, nil},
		{"wss stream 64 B, 64 in flight x4: msg/s", "higher", "wss-stream64", false, rate, nil},
		{"wss stream 64 B: server CPU µs/msg", "lower", "wss-stream64", false, cpu, nil},
		{"wss stream 64 B: wsbench CPU µs/msg", "lower", "wss-stream64", false, gen, nil},
		{"wss stream 64 KiB lines: MB/s", "higher", "wss-stream64k", false, mbps, nil},
		{"wss stream 64 KiB lines: server CPU µs/msg", "lower", "wss-stream64k", false, cpu, nil},
		{fmt.Sprintf("wss idle: server RSS KiB/conn at %d conns", idleConns), "lower", "wss-idle", false, kib, nil},
		{"wss idle: RSS/conn over plain ws idle's", "lower", "wss-idle", false, nil, []string{"wss idle: server RSS", "idle: server RSS"}},
	}
}

// cell is one server's median for one row, or why there is none.
type cell struct {
	ok     bool
	v      float64
	spread float64 // (max-min)/median of the repeats; +Inf when they differ around a zero median
	runs   int     // repeats the median is of
	text   string  // when !ok
}

// row is one filled row of the table.
type row struct {
	spec  rowSpec
	cells map[string]cell // by column
}

func (r row) ratio(a, b string) string {
	x, y := r.cells[a], r.cells[b]
	if !x.ok || !y.ok || y.v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", x.v/y.v)
}

// noise judges the ratio of column a to column b against the spread of
// their repeats: "within" when it differs from 1× by no more than the
// larger spread of the two, else "better" or "WORSE" as the row reads.
func (r row) noise(a, b string) string {
	x, y := r.cells[a], r.cells[b]
	switch {
	case !x.ok || !y.ok || y.v == 0:
		return "—"
	case x.runs < 2 || y.runs < 2:
		return "1 run" // no spread to judge by
	}
	d := x.v/y.v - 1
	if math.Abs(d) <= max(x.spread, y.spread) {
		return "within"
	}
	if (d > 0) == (r.spec.better == "higher") {
		return "better"
	}
	return "WORSE"
}

// report is a finished benchmark: its rows, the target checks and notes.
type report struct {
	opts               options
	loadStart, loadEnd string // /proc/loadavg
	rows               []row
	targets            []string
	notes              []string
	main               bool  // a scenario of the main table ran: print it
	handover           []row // the hand-over table; nil: not run
	handoverNotes      []string
}

// row returns the row for a scenario's value, the first whose label
// starts with prefix.
func (rep *report) row(prefix string) row {
	for _, r := range rep.rows {
		if strings.HasPrefix(r.spec.label, prefix) {
			return r
		}
	}
	return row{cells: map[string]cell{}}
}

func (b *bench) report() *report {
	rep := &report{opts: b.opts}
	failed := map[string]int{}
	for _, spec := range rowSpecs(b.opts) {
		r := row{spec: spec, cells: map[string]cell{}}
		for _, col := range rep.columns() {
			v := variantFor(spec, col)
			switch {
			case spec.ratioOf != nil:
				r.cells[col] = ratioCell(rep.row(spec.ratioOf[0]).cells[col], rep.row(spec.ratioOf[1]).cells[col])
			case v == nil:
				r.cells[col] = cell{text: "n/a"}
			case b.refused[v] != "":
				r.cells[col] = cell{text: "n/a (" + b.refused[v] + ")"}
			default:
				r.cells[col] = median(b.results[key{spec.scenario, v}], spec.value)
			}
		}
		rep.rows = append(rep.rows, r)
	}
	for k, rs := range b.results {
		for _, r := range rs {
			if k.scenario == "connrate" || k.scenario == "handover" {
				failed[k.v.name] += r.errs
			}
		}
	}
	rep.main = !slices.Equal(b.opts.only, []string{"handover"})
	b.handoverReport(rep)
	rep.targets = rep.checkTargets()
	rep.loadStart, rep.loadEnd = b.loadStart, loadAverage()
	if n := rep.generatorNote(); n != "" {
		rep.notes = append(rep.notes, n)
	}
	rep.notes = append(rep.notes, b.skipped...)
	rep.notes = append(rep.notes, b.notes...)
	for name, n := range failed {
		if n > 0 {
			rep.notes = append(rep.notes, fmt.Sprintf("%s: %d connection cycles failed while measuring (not counted)", name, n))
		}
	}
	return rep
}

// columns are the report's server columns: the baseline's, with
// -baseline, next to wsbridge's.
func (rep *report) columns() []string {
	if rep.opts.baseline == "" {
		return columns
	}
	return []string{colWsbridge, colBaseline, colWebsocketd, colFloor}
}

// variantFor returns the variant whose results fill a row's cell in
// column col: its scenario's variant in that column, the len32 one for a
// len32 row (the floor echoes frames whatever their opcode: its one
// variant serves both), the baseline twin of wsbridge's; nil: none, n/a.
func variantFor(spec rowSpec, col string) *variant {
	if col == colBaseline {
		return baselineTwins[variantFor(spec, colWsbridge)]
	}
	sc := scenarioNamed(spec.scenario)
	if sc == nil {
		return nil
	}
	for _, v := range sc.variants {
		if v.column == col && (v.binary == spec.len32 || col == colFloor) {
			return v
		}
	}
	return nil
}

// ratioCell is x's median over y's, for a row made of two others; its
// spread, the sum of theirs, is about the ratio's. A cell missing either
// says why the first missing one is.
func ratioCell(x, y cell) cell {
	switch {
	case !x.ok:
		return cell{text: x.text}
	case !y.ok:
		return cell{text: y.text}
	case y.v == 0:
		return cell{text: "—"}
	}
	return cell{ok: true, v: x.v / y.v, spread: x.spread + y.spread, runs: min(x.runs, y.runs)}
}

// median returns the median of the repeats' values; a cell with a failed
// or stalled repeat says so instead, with the messages that made it.
func median(rs []result, value func(result) float64) cell {
	if len(rs) == 0 {
		return cell{text: "—"}
	}
	var vals []float64
	var stalledMsgs []float64
	for _, r := range rs {
		switch {
		case r.err != nil:
			return cell{text: "error"}
		case r.stalled:
			stalledMsgs = append(stalledMsgs, float64(r.msgs))
		default:
			vals = append(vals, value(r))
		}
	}
	if len(stalledMsgs) > 0 {
		return cell{text: fmt.Sprintf("stalled (%s msgs, %d/%d runs)", commas(int64(mid(stalledMsgs))), len(stalledMsgs), len(rs))}
	}
	m := mid(vals) // sorts vals
	c := cell{ok: true, v: m, runs: len(vals)}
	switch lo, hi := vals[0], vals[len(vals)-1]; {
	case hi == lo:
	case m == 0:
		c.spread = math.Inf(1)
	default:
		c.spread = (hi - lo) / math.Abs(m)
	}
	return c
}

func mid(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// header is the table's column titles.
func (rep *report) header() []string {
	h := append([]string{"measurement", "better"}, rep.columns()...)
	if rep.opts.baseline != "" {
		h = append(h, "wsbridge/baseline", "vs noise")
	}
	return append(h, "wsbridge/websocketd", "wsbridge/floor")
}

func (rep *report) cellsOf(r row) []string {
	out := []string{r.spec.label, r.spec.better}
	for _, col := range rep.columns() {
		c := r.cells[col]
		switch {
		case !c.ok:
			out = append(out, c.text)
		case rep.opts.baseline != "" && c.runs > 1:
			out = append(out, num(c.v)+" ("+percent(c.spread)+")")
		default:
			out = append(out, num(c.v))
		}
	}
	if rep.opts.baseline != "" {
		out = append(out, r.ratio(colWsbridge, colBaseline), r.noise(colWsbridge, colBaseline))
	}
	return append(out, r.ratio(colWsbridge, colWebsocketd), r.ratio(colWsbridge, colFloor))
}

// percent formats a spread.
func percent(f float64) string {
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		return "—"
	case f >= 0.1:
		return fmt.Sprintf("%.0f%%", f*100)
	}
	return fmt.Sprintf("%.1f%%", f*100)
}

// noiseRule says, above a table with a baseline column, how to read it.
func (rep *report) noiseRule() []string {
	if rep.opts.baseline == "" {
		return nil
	}
	return []string{
		"baseline: " + rep.opts.baseline + ", measured wherever wsbridge is, in turn with it and the others in every round.",
		"(x%) after a median is the spread of its repeats, (max−min)/median. wsbridge/baseline is within noise when it differs from 1× by no more than " +
			"the larger spread of the two binaries; outside it the row reads better or WORSE. One repeat has no spread: use -repeat 3 or more.",
	}
}

func (rep *report) about() string {
	o := rep.opts
	return fmt.Sprintf("wsbench %s — %s, %d CPUs, %s; %v per measurement, median of %d, %d idle conns; CLK_TCK %d; load average %s at start, %s at end",
		strings.Join(o.args, " "), time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), runtime.Version(),
		o.duration, o.repeat, o.idleConns, clockTicks, rep.loadStart, rep.loadEnd)
}

// loadAverage returns the 1-minute load average: how noisy the machine
// was, for whoever compares two reports.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// generatorNote says how much CPU the load generator used while streaming
// to the floor, the fastest server: far below a core means it was not what
// limited any server.
func (rep *report) generatorNote() string {
	var parts []string
	for _, p := range []struct{ name, rate, cpu string }{
		{"64 B", "stream 64 B, 64", "stream 64 B: wsbench CPU"},
		{"64 KiB", "stream 64 KiB lines, 64", "stream 64 KiB lines: wsbench CPU"},
	} {
		rate, cpu := rep.row(p.rate).cells[colFloor], rep.row(p.cpu).cells[colFloor]
		if rate.ok && cpu.ok {
			parts = append(parts, fmt.Sprintf("%.2f of a CPU at %s msg/s of %s", rate.v*cpu.v/1e6, num(rate.v), p.name))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "Load generator ceiling: streaming to the floor, wsbench itself used " + strings.Join(parts, ", and ") + "."
}

var legend = []string{
	"Ratios are wsbridge's value over the other server's, from the same interleaved run: read them with the 'better' column.",
	"floor: an echo server with no child process (gobwas/ws, a goroutine per connection); wsbridge and websocketd run /bin/cat per connection.",
	"Server CPU is the server process's utime+stime over the measurement, its children (cat) not included. MB = 10^6 bytes of payload echoed.",
	"The len32 rows' floor is the same 64 KiB echo as the line rows': the floor echoes frames whatever their opcode.",
	"wss rows: both servers run with --ssl --sslcert --sslkey and a self-signed ECDSA P-256 certificate the run makes; every connection makes a full TLS handshake (no resumption), " +
		"with Go's client defaults (TLS 1.3, X25519MLKEM768 offered first, as browsers do). The wss idle ratio is each server's wss KiB/conn over its plain idle row's.",
}

func (rep *report) writeText(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, rep.about())
	for _, l := range rep.noiseRule() {
		fmt.Fprintln(w, l)
	}
	if rep.main {
		rows := [][]string{rep.header()}
		for _, r := range rep.rows {
			rows = append(rows, rep.cellsOf(r))
		}
		writeAligned(w, rows)
		fmt.Fprintln(w)
		for _, t := range rep.targets {
			fmt.Fprintln(w, t)
		}
		fmt.Fprintln(w)
		for _, n := range append(legend, rep.notes...) {
			fmt.Fprintln(w, "- "+n)
		}
	}
	if rep.handover != nil {
		writeAligned(w, append([][]string{handoverHeader()}, rep.handoverCells()...))
		fmt.Fprintln(w)
		for _, n := range rep.handoverNotes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// writeAligned writes a table, its first row the header, in columns: the
// first two to the left, the numbers to the right.
func writeAligned(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	fmt.Fprintln(w)
	for n, r := range rows {
		var sb strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i < 2 {
				sb.WriteString(c + pad)
			} else {
				sb.WriteString(pad + c)
			}
			if i < len(r)-1 {
				sb.WriteString("  ")
			}
		}
		fmt.Fprintln(w, sb.String())
		if n == 0 {
			fmt.Fprintln(w, strings.Repeat("-", len([]rune(sb.String()))))
		}
	}
}

func (rep *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "# wsbench results\n\n%s\n\n", rep.about())
	for _, l := range rep.noiseRule() {
		fmt.Fprintf(w, "%s\n\n", l)
	}
	if rep.main {
		rows := [][]string{rep.header()}
		for _, r := range rep.rows {
			rows = append(rows, rep.cellsOf(r))
		}
		writeMarkdownTable(w, rows)
		fmt.Fprintln(w)
		for _, t := range rep.targets {
			fmt.Fprintf(w, "- **%s**%s\n", t[:4], t[4:])
		}
		fmt.Fprintln(w)
		for _, n := range append(legend, rep.notes...) {
			fmt.Fprintln(w, "- "+n)
		}
	}
	if rep.handover != nil {
		if rep.main {
			fmt.Fprintln(w)
		}
		writeMarkdownTable(w, append([][]string{handoverHeader()}, rep.handoverCells()...))
		fmt.Fprintln(w)
		for _, n := range rep.handoverNotes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// writeMarkdownTable writes a table, its first row the header, the first
// two columns to the left, the numbers to the right.
func writeMarkdownTable(w io.Writer, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(rows[0], " | "), strings.Repeat(" --- |", 2)+strings.Repeat(" ---: |", len(rows[0])-2))
	for _, r := range rows[1:] {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

// num formats a measured value with the precision it deserves.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case v >= 10000:
		return commas(int64(math.Round(v)))
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v > 0 && v < 0.01:
		return strconv.FormatFloat(v, 'g', 2, 64) // a tiny ratio keeps two significant figures
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
