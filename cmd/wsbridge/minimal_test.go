package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// TestMinimalBuild builds wsbridge with the wsbridge_minimal tag through
// cross/build.sh, as `make cross` does, for this machine, and checks that
// the result serves a WebSocket echo, answers plain HTTP with a fixed
// status, and refuses the options it leaves out: the tag cannot rot.
func TestMinimalBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary: not with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("cross/build.sh builds for Linux")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to run cross/build.sh")
	}
	dir := t.TempDir()
	target := "linux-" + runtime.GOARCH
	cmd := exec.Command("sh", "cross/build.sh", "-o", dir, "--pkg", "./cmd/wsbridge",
		"--name", "wsbridge-minimal", "--tags", "wsbridge_minimal", "--version", "minimal-test", target)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cross/build.sh: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, target, "wsbridge-minimal")
	if !filepath.IsAbs(bin) {
		t.Fatalf("%s: want an absolute path", bin)
	}

	out, err := exec.Command(bin, "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "wsbridge minimal-test" {
		t.Fatalf("--version: %q, %v; want \"wsbridge minimal-test\"", out, err)
	}

	t.Run("echo", func(t *testing.T) {
		b := startBinary(t, bin, nil, childBin, "echo")
		c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
		if err := c.WriteFrame(true, wstest.OpText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		op, data, _, err := c.ReadMessage(5 * time.Second)
		if err != nil || op != wstest.OpText || string(data) != "hello" {
			t.Fatalf("echo: op %d %q, %v; want text \"hello\"", op, data, err)
		}
	})

	t.Run("plain HTTP", func(t *testing.T) {
		b := startBinary(t, bin, nil, "--config="+testConfig(t, "[endpoint /ws]\ncommand = "+childBin+" echo\n"))
		for _, tc := range []struct {
			name, path string
			want       int
		}{
			{"endpoint", "/ws", http.StatusUpgradeRequired},
			{"nothing there", "/nothing", http.StatusNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := http.Get("http://" + b.Addr + tc.path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("GET %s: %s %q, want %d", tc.path, resp.Status, body, tc.want)
				}
			})
		}
	})

	t.Run("left out", func(t *testing.T) {
		for _, flag := range []string{"--demo", "--devconsole", "--staticdir=" + t.TempDir(), "--ssl"} {
			// A build that accepted the flag would serve: the timeout
			// ends it.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := exec.CommandContext(ctx, bin, "--address=127.0.0.1", "--port=0", flag, childBin, "echo").CombinedOutput()
			cancel()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "minimal build") {
				t.Errorf("wsbridge-minimal %s: %v %q; want exit status 2 naming the minimal build", flag, err, out)
			}
		}
	})
}
