package main

// What the integration tests read of processes and of the bridge's log:
// /proc entries (to see which children exist, whether they are gone, how
// much memory the bridge holds) and slog text lines parsed into fields.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procStat is what a test needs of /proc/PID/stat.
type procStat struct {
	PID, PPID, PGID int
	State           byte   // R, S, Z, ...
	Start           uint64 // start time in clock ticks since boot: tells a reused PID apart
}

// readStat reads /proc/pid/stat; ok is false when there is no such process.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name is in parentheses and may hold anything: split
	// after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return procStat{}, false
	}
	st := procStat{PID: pid, State: f[0][0]}
	st.PPID, _ = strconv.Atoi(f[1])
	st.PGID, _ = strconv.Atoi(f[2])
	st.Start, _ = strconv.ParseUint(f[19], 10, 64)
	return st, true
}

// mustStat reads a process that must exist.
func mustStat(t testing.TB, pid int) procStat {
	t.Helper()
	st, ok := readStat(pid)
	if !ok {
		t.Fatalf("process %d does not exist", pid)
	}
	return st
}

// gone reports whether the process p described is gone: no entry, or the
// PID now names another process. A zombie is not gone.
func (p procStat) gone() bool {
	now, ok := readStat(p.PID)
	return !ok || now.Start != p.Start
}

// waitGone polls until every process in ps is gone, failing the test
// after timeout with the state of those left.
func waitGone(t testing.TB, timeout time.Duration, ps ...procStat) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, p := range ps {
			if !p.gone() {
				st, _ := readStat(p.PID)
				left = append(left, strconv.Itoa(p.PID)+" state "+string(st.State)+" ppid "+strconv.Itoa(st.PPID))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still there after %v: %s", timeout, strings.Join(left, "; "))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// childrenOf lists the processes whose parent is ppid, zombies included.
func childrenOf(ppid int) []procStat {
	ents, _ := os.ReadDir("/proc")
	var kids []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && st.PPID == ppid {
			kids = append(kids, st)
		}
	}
	return kids
}

// waitChildren polls until ppid has exactly n children and returns them.
func waitChildren(t testing.TB, ppid, n int, timeout time.Duration) []procStat {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		kids := childrenOf(ppid)
		if len(kids) == n {
			return kids
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d has %d children after %v, want %d: %+v", ppid, len(kids), timeout, n, kids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// procStatusKB returns a "kB" field of /proc/pid/status, such as VmHWM
// (peak resident set) or VmRSS.
func procStatusKB(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", field, line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// procWritten returns the bytes pid has written (wchar of /proc/pid/io).
func procWritten(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "io"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	t.Fatalf("no wchar in /proc/%d/io", pid)
	return 0
}

// logRecord is one slog text line, by key.
type logRecord map[string]string

// parseLogLine splits a slog TextHandler line into its fields; quoted
// values are unquoted.
func parseLogLine(line string) logRecord {
	rec := logRecord{}
	s := line
	for {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return rec
		}
		key := s[:eq]
		s = s[eq+1:]
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return rec
			}
			rec[key], _ = strconv.Unquote(q)
			s = s[len(q):]
			continue
		}
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			sp = len(s)
		}
		rec[key] = s[:sp]
		s = s[sp:]
	}
}

// Records returns the log's lines whose message is msg.
func (b *bridgeProc) Records(msg string) []logRecord {
	var recs []logRecord
	for _, line := range strings.Split(b.Log.String(), "\n") {
		if rec := parseLogLine(line); rec["msg"] == msg {
			recs = append(recs, rec)
		}
	}
	return recs
}

// WaitRecords waits up to timeout for at least n lines with message msg.
func (b *bridgeProc) WaitRecords(msg string, n int, timeout time.Duration) []logRecord {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := b.Records(msg)
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%d log lines %q after %v, want %d", len(recs), msg, timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Access waits for the access line of n sessions and returns them.
func (b *bridgeProc) Access(n int) []logRecord {
	b.t.Helper()
	return b.WaitRecords("session", n, 15*time.Second)
}
