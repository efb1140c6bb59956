package main

// The project's targets, checked against the report of the same run.

import (
	"fmt"
	"strings"
)

// checkTargets compares wsbridge with the project's promises.
func (rep *report) checkTargets() []string {
	var out []string
	check := func(name string, ok bool, detail string) {
		status := "FAIL"
		if ok {
			status = "PASS"
		}
		out = append(out, fmt.Sprintf("%s  %s: %s", status, name, detail))
	}
	skip := func(name, why string) { out = append(out, fmt.Sprintf("SKIP  %s: %s", name, why)) }
	// versus compares wsbridge's cell in a row with another column's.
	versus := func(name, rowPrefix, other string, ok func(x float64) bool, stalledOtherPasses bool) {
		r := rep.row(rowPrefix)
		a, b := r.cells[colWsbridge], r.cells[other]
		switch {
		case !a.ok:
			switch {
			case a.text == "—":
				skip(name, "wsbridge not measured")
			case strings.HasPrefix(a.text, "n/a"):
				skip(name, "wsbridge "+a.text)
			default:
				check(name, false, "wsbridge "+a.text)
			}
		case !b.ok && stalledOtherPasses && strings.HasPrefix(b.text, "stalled"):
			check(name, true, fmt.Sprintf("wsbridge %s, %s %s", num(a.v), other, b.text))
		case !b.ok && b.text == "—":
			skip(name, other+" not measured")
		case !b.ok:
			skip(name, other+" "+b.text)
		default:
			x := a.v / b.v
			check(name, ok(x), fmt.Sprintf("%.2f× (wsbridge %s, %s %s)", x, num(a.v), other, num(b.v)))
		}
	}
	versus("streamed 64 B msg/s ≥ 3× websocketd's", "stream 64 B, 64", colWebsocketd, func(x float64) bool { return x >= 3 }, true)
	versus("streamed 64 B server CPU/msg ≤ 1/3 of websocketd's", "stream 64 B: server CPU", colWebsocketd, func(x float64) bool { return x <= 1.0/3 }, false)
	versus("echo p50 within 1.3× of the floor's", "echo 64 B: p50", colFloor, func(x float64) bool { return x <= 1.3 }, false)
	versus("64 KiB pipelined MB/s ≥ 50% of the floor's", "stream 64 KiB lines: MB/s", colFloor, func(x float64) bool { return x >= 0.5 }, false)
	// alone checks a wsbridge-only figure against a bound.
	alone := func(name, rowPrefix, unit string, ok func(x float64) bool) {
		c := rep.row(rowPrefix).cells[colWsbridge]
		switch {
		case c.ok:
			check(name, ok(c.v), num(c.v)+unit)
		case c.text == "—":
			skip(name, "wsbridge not measured")
		case strings.HasPrefix(c.text, "n/a"):
			skip(name, "wsbridge "+c.text) // it cannot run this: no --ssl
		default:
			check(name, false, "wsbridge "+c.text)
		}
	}
	alone("idle memory ≤ 8 KiB per connection", "idle: server RSS", " KiB/conn", func(x float64) bool { return x <= 8 })
	alone("shared idle memory ≤ 3 KiB per connection", "shared idle: server RSS", " KiB/conn", func(x float64) bool { return x <= 3 })
	alone("broadcast: well under one write syscall per client per message (≤ 0.1)", "broadcast: write syscalls", " per client per message", func(x float64) bool { return x <= 0.1 })
	versus("connections/s ≥ 1.3× websocketd's", "connections/s", colWebsocketd, func(x float64) bool { return x >= 1.3 }, true)
	alone("wss idle memory ≤ 2× plain ws's", "wss idle: RSS/conn over", "× plain ws's", func(x float64) bool { return x <= 2 })
	return out
}
