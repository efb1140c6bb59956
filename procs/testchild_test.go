package procs

import (
	"io"
	"testing"
	"time"
)

// The contract of cmd/testchild's modes, which the bridge tests rely on
// too: exact stdout for a given stdin, and the exit status.
func TestTestChildModes(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		out   string
		code  int
	}{
		{"echo", []string{"echo"}, "a\n\nb", "a\n\nb", 0},
		{"cat", []string{"cat"}, "\x00\xff\r\n", "\x00\xff\r\n", 0},
		{"exit with text", []string{"exit", "3", "bye now"}, "", "bye now\n", 3},
		{"exit without text", []string{"exit", "0"}, "", "", 0},
		{"partial", []string{"partial", "no newline"}, "", "no newline", 0},
		{"bytes", []string{"bytes", "ff00c328"}, "", "\xff\x00\xc3\x28", 0},
		{"len32-truncated", []string{"len32-truncated"}, "", "\x00\x00\x00\x640123456789", 3},
		{"flood", []string{"flood", "3", "8"}, "", "1 abcdef\n2 abcdef\n3 abcdef\n", 0},
		{"flood cuts the number", []string{"flood", "10", "1"}, "", "1\n2\n3\n4\n5\n6\n7\n8\n9\n1\n", 0},
		{"stderr then echo", []string{"stderr", "2"}, "x\n", "x\n", 0},
		{"errbytes", []string{"errbytes", "6869"}, "", "", 0},
		{"unknown mode", []string{"no-such-mode"}, "", "", 2},
		{"bad argument", []string{"exit", "three"}, "", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := child(tt.args...)
			spec.Stderr = func([]byte) {}
			p := mustStart(t, spec)
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				io.WriteString(p.Stdin, tt.stdin) // fails once a child that does not read exits
				p.Stdin.Close()
			}()
			defer func() { <-wrote }()
			p.Stdout.SetReadDeadline(time.Now().Add(10 * time.Second))
			out, err := io.ReadAll(p.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.out {
				t.Errorf("stdout %q, want %q", out, tt.out)
			}
			if s := waitDone(t, p); s != (Status{Code: tt.code}) {
				t.Errorf("status %v, want exit status %d", s, tt.code)
			}
		})
	}
}
