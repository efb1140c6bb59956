package main

// The HTTP side of the fault matrix (issue 9) that belongs to the binary:
// special files named where the daemon wants a file or a directory stop
// its start. The rest is tested beside bridge (bridge/http_faults_test.go).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// mkfifo makes a named pipe at p that nobody writes to: opening it for
// reading blocks until someone opens it for writing.
func mkfifo(t *testing.T, p string, mode uint32) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, mode); err != nil {
		t.Fatal(err)
	}
	// Mkfifo applies the umask; the tests want the mode as given (an
	// executable FIFO in --dir).
	if err := os.Chmod(p, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	return p
}

// 6. A special file named where the daemon wants a file or a directory
// stops the start, with status 2 and a message, and never blocks it.
func TestFaultSpecialFilesAtStart(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	fifo := mkfifo(t, filepath.Join(base, "fifo"), 0o755)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"--config", []string{"--config=" + fifo}, "not a regular file"},
		{"command in the file", []string{"--config=" + testConfig(t, "[endpoint /a]\ncommand = "+fifo+"\n")}, "cannot run the program"},
		{"COMMAND", []string{fifo}, "cannot run the program"},
		{"dir in the file", []string{"--config=" + testConfig(t, "[endpoint /a]\ndir = "+fifo+"\n")}, "not a directory"},
		{"workdir in the file", []string{"--config=" + testConfig(t, "[endpoint /a]\ncommand = "+childBin+" echo\nworkdir = "+fifo+"\n")}, "not a directory"},
		{"staticdir in the file", []string{"--config=" + testConfig(t, "staticdir = "+fifo+"\n[endpoint /a]\ncommand = "+childBin+" echo\n")}, "not a directory"},
		{"--staticdir", []string{"--staticdir=" + fifo, childBin, "echo"}, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A port that is free, in case the bad path is not noticed.
			args := append([]string{"--address=127.0.0.1", fmt.Sprintf("--port=%d", freePort(t))}, tc.args...)
			cmd := exec.Command(bridgeBin, args...)
			var out wstest.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("wsbridge %s still running after 30s; output %q", strings.Join(tc.args, " "), out.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; output %q", err, out.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output %q, want it to say %q", out.String(), tc.want)
			}
		})
	}
}
