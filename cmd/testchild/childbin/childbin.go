// Package childbin builds cmd/testchild, the helper child the tests of
// procs and bridge run, or finds the one given by WSBRIDGE_TESTCHILD (a
// prebuilt one, for runs without a Go toolchain, such as a cross-built
// test binary under qemu). For tests only.
package childbin

import (
	"errors"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
)

// Env names the variable that gives a prebuilt testchild.
const Env = "WSBRIDGE_TESTCHILD"

// Build builds cmd/testchild into dir and returns its path, or returns
// $WSBRIDGE_TESTCHILD when set. The module root is found by walking up
// from the working directory to go.mod, so it works from any package of
// the module.
func Build(dir string) (string, error) {
	if p := os.Getenv(Env); p != "" {
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	out := filepath.Join(dir, "testchild")
	cmd := exec.Command(goTool, "build", "-o", out, "./cmd/testchild")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build testchild: %w\n%s", err, b)
	}
	return out, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
