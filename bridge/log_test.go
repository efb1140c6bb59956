package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLog records what a Server logs, each record as its message, level,
// time (RFC 3339, as the daemon's log has it) and attributes by key (values as fmt prints them), for tests that
// assert the log: pass Logger() in Options. With WSBRIDGE_TEST_LOG set,
// records are printed too.
type testLog struct {
	mu      sync.Mutex
	records []map[string]string
	attrs   []slog.Attr
	shared  *testLog // the root, for handlers made With attributes
}

func newTestLog() *testLog { l := &testLog{}; l.shared = l; return l }

// Logger returns a logger that records into l, at every level.
func (l *testLog) Logger() *slog.Logger { return slog.New(l) }

func (l *testLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *testLog) Handle(_ context.Context, r slog.Record) error {
	rec := map[string]string{"msg": r.Message, "level": r.Level.String(), "time": r.Time.Format(time.RFC3339Nano)}
	add := func(a slog.Attr) bool {
		rec[a.Key] = fmt.Sprint(a.Value.Resolve().Any())
		return true
	}
	for _, a := range l.attrs {
		add(a)
	}
	r.Attrs(add)
	root := l.shared
	root.mu.Lock()
	root.records = append(root.records, rec)
	root.mu.Unlock()
	if os.Getenv("WSBRIDGE_TEST_LOG") != "" {
		fmt.Fprintln(os.Stderr, rec)
	}
	return nil
}

func (l *testLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &testLog{attrs: append(append([]slog.Attr(nil), l.attrs...), as...), shared: l.shared}
}

func (l *testLog) WithGroup(string) slog.Handler { return l }

// Records returns the records with message msg so far.
func (l *testLog) Records(msg string) []map[string]string {
	root := l.shared
	root.mu.Lock()
	defer root.mu.Unlock()
	var out []map[string]string
	for _, r := range root.records {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// WaitRecords waits up to timeout for n records with message msg, and
// fails the test with the whole log if they do not come.
func (l *testLog) WaitRecords(t testing.TB, msg string, n int, timeout time.Duration) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if got := l.Records(msg); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records %q after %v, want %d; the log:\n%s", len(l.Records(msg)), msg, timeout, n, l)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// String is the whole log, a record a line.
func (l *testLog) String() string {
	root := l.shared
	root.mu.Lock()
	defer root.mu.Unlock()
	var b strings.Builder
	for _, r := range root.records {
		fmt.Fprintln(&b, r)
	}
	return b.String()
}
