package main

// The shared mode's flags that only the daemon checks. How a shared
// child's output is paced is tested in-process (bridge/shared_pace_test.go).

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A --assembly-budget below --max-message is refused before start (exit
// 2). What the budget bounds is tested in-process
// (bridge.TestSharedAssemblyBudgetBoundsUnfinished).
func TestSharedAssemblyBudgetFlag(t *testing.T) {
	t.Parallel()
	t.Run("refused below max-message", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bridgeBin, "--address=127.0.0.1", "--port=0", "--shared",
			"--assembly-budget=512KiB", childBin, "broadcast").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--assembly-budget") {
			t.Fatalf("%v %q, want exit status 2 naming --assembly-budget", err, out)
		}
	})
}
