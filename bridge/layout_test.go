package bridge

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestLayout checks that imports point one way: each package below
// bridge/ imports only the project's packages listed for it here, and the
// leaves none. A new package, or a new import between them, is a choice
// to make here, on purpose.
func TestLayout(t *testing.T) {
	const mod = "github.com/wsbridge/wsbridge/"
	allowed := map[string][]string{
		"bridge/http1":            nil,
		"bridge/handover":         {"bridge/unixsock"},
		"bridge/unixsock":         nil,
		"bridge/proxyproto":       nil,
		"bridge/certs":            nil,
		"bridge/tlsconn":          {"bridge/poll"},
		"bridge/backend":          {"bridge/http1"},
		"bridge/poll":             nil,
		"bridge/metrics":          nil,
		"bridge/transport":        {"framing"},
		"bridge/stdio":            {"bridge/poll", "framing"},
		"bridge/modes":            {"bridge/poll", "bridge/transport", "framing", "procs"},
		"bridge/modes/process":    {"bridge/modes", "bridge/poll", "bridge/stdio", "bridge/transport", "framing", "procs"},
		"bridge/modes/shared":     {"bridge/modes", "bridge/poll", "bridge/stdio", "bridge/transport", "framing", "procs"},
		"bridge/modes/cgi":        {"bridge/modes", "bridge/poll", "bridge/transport", "framing", "procs"},
		"bridge/wsconn":           {"bridge/poll", "bridge/transport", "framing"},
		"bridge/pages":            {"bridge/http1"},
		"bridge/internal/memconn": {"bridge/poll", "bridge/transport", "framing"},
		"bridge/wstest":           nil,
		"framing":                 nil,
		"procs":                   nil,
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, "bridge/") && rel != "framing" && rel != "procs" {
			return nil
		}
		want, ok := allowed[rel]
		if !ok {
			t.Errorf("package %s is not in TestLayout's table: say what it may import", rel)
			return nil
		}
		seen[rel] = true
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if dep, ok := strings.CutPrefix(p, mod); ok && !slices.Contains(want, dep) {
				t.Errorf("%s imports %s: not allowed (allowed: %v)", filepath.Base(path), dep, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range allowed {
		if !seen[p] {
			t.Errorf("package %s of TestLayout's table has no source: remove it", p)
		}
	}
}
