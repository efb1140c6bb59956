package main

// What the integration tests read of the bridge's log: slog text lines
// parsed into fields. What they read of processes is procs/proctest's.

import (
	"strconv"
	"strings"
	"time"
)

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
