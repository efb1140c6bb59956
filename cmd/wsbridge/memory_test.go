package main

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestMemoryLimitFlag(t *testing.T) {
	conf := testConfig(t, "memory-limit = 32MiB\n\n[endpoint]\ncommand = "+childBin+" echo\n")
	cases := []struct {
		name string
		args []string
		want int64
		err  string // a substring of the error; "" for none
	}{
		{"default: none", nil, 0, ""},
		{"MiB", []string{"--memory-limit=24MiB"}, 24 << 20, ""},
		{"bytes", []string{"--memory-limit=1048576"}, 1 << 20, ""},
		{"zero is none", []string{"--memory-limit=0"}, 0, ""},
		{"too small", []string{"--memory-limit=64KiB"}, 0, "at least 1MiB"},
		{"negative", []string{"--memory-limit=-1"}, 0, "not a size"},
		{"not a size", []string{"--memory-limit=lots"}, 0, "not a size"},
		{"config key", []string{"--config=" + conf}, 32 << 20, ""},
		{"config key and same flag", []string{"--config=" + conf, "--memory-limit=32MiB"}, 32 << 20, ""},
		{"config key and other flag", []string{"--config=" + conf, "--memory-limit=16MiB"}, 0, "remove one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.HasPrefix(strings.Join(args, " "), "--config") {
				args = append(args, childBin, "echo")
			}
			c, err := parseFlags(args, io.Discard)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one with %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case c.memoryLimit != tc.want:
				t.Fatalf("memory limit %d, want %d", c.memoryLimit, tc.want)
			}
		})
	}
}

func TestSetMemoryRefusesTwoLimits(t *testing.T) {
	env := map[string]string{"GOMEMLIMIT": "40MiB"}
	err := setMemory(32<<20, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "GOMEMLIMIT") {
		t.Fatalf("setMemory with GOMEMLIMIT set: %v, want an error naming it", err)
	}
}

// TestMemoryLimitApplied runs the daemon and reads the limit it logs,
// which it reads back from the runtime.
func TestMemoryLimitApplied(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"none", []string{"GOMEMLIMIT="}, nil, "msg=memory limit=none"},
		{"flag", []string{"GOMEMLIMIT="}, []string{"--memory-limit=48MiB"}, "msg=memory limit=50331648 from=--memory-limit"},
		{"GOMEMLIMIT", []string{"GOMEMLIMIT=40MiB"}, nil, "msg=memory limit=41943040 from=GOMEMLIMIT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBridgeEnv(t, tc.env, append(tc.args, childBin, "echo")...)
			if !b.Log.WaitFor(tc.want, 5*time.Second) {
				t.Fatalf("no %q in the log:\n%s", tc.want, b.Log.String())
			}
		})
	}

	t.Run("flag and GOMEMLIMIT", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bridgeBin, "--address=127.0.0.1", "--port=0", "--memory-limit=48MiB", childBin, "echo")
		cmd.Env = append(cmd.Environ(), "GOMEMLIMIT=40MiB")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "keep one") {
			t.Fatalf("%v %q, want exit status 2 saying to keep one limit", err, out)
		}
	})
}
