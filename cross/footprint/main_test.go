package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestMeasure runs the tool's measurement against a wsbridge built from
// this tree, in both modes, with a few connections: every connection must
// echo (or join) for measure to succeed, and both readings must be real.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wsbridge: not with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if _, err := exec.LookPath("/bin/cat"); err != nil {
		t.Skip("no /bin/cat")
	}
	bin := filepath.Join(t.TempDir(), "wsbridge")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/wsbridge").CombinedOutput(); err != nil {
		t.Fatalf("building wsbridge: %v\n%s", err, out)
	}
	for _, shared := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r, err := measure(ctx, []string{bin}, 3, 1, shared)
		cancel()
		if err != nil {
			t.Fatalf("shared %v: %v", shared, err)
		}
		// A Go daemon holds at least a megabyte; a zero means the
		// reading failed silently.
		if r.idle < 1024 || r.open < 1024 {
			t.Errorf("shared %v: idle %d KiB, open %d KiB: want real readings", shared, r.idle, r.open)
		}
	}
}

func TestMeasureFailsWithoutEcho(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// A program that listens nowhere: measure must give up, not hang or
	// report a row.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := measure(ctx, []string{"/bin/sh", "-c", "sleep 10", "sh"}, 1, 0, false); err == nil {
		t.Fatal("measure of a program that serves nothing succeeded")
	}
}
