package bridge

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scriptTree makes a script directory with every case lookup must get
// right, and an executable outside it that links try to reach.
func scriptTree(t testing.TB) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "scripts")
	file := func(name string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho hi\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	file("scripts/a.sh", 0o755)
	file("scripts/sub/b.sh", 0o755)
	file("scripts/plain.txt", 0o644)
	file("scripts/.hidden.sh", 0o755)
	file("scripts/.git/hook.sh", 0o755)
	file("outside.sh", 0o755)
	file("scripts/sub/deeper/c.sh", 0o700)
	link("../outside.sh", "scripts/escape.sh")
	link(filepath.Join(base, "outside.sh"), "scripts/escape-abs.sh")
	link("..", "scripts/up")
	link("a.sh", "scripts/alias.sh")
	link("sub", "scripts/subalias")
	link("nowhere", "scripts/dangling.sh")
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestScriptDirLookup(t *testing.T) {
	dir := scriptTree(t)
	cases := []struct {
		name, mount, raw string
		script, info     string // want; script "" means refused
		why              string // part of the reason when refused
	}{
		{"script", "", "/a.sh", "/a.sh", "", ""},
		{"path info", "", "/a.sh/room1/x", "/a.sh", "/room1/x", ""},
		{"trailing slash is path info", "", "/a.sh/", "/a.sh", "/", ""},
		{"subdirectory", "", "/sub/b.sh/r", "/sub/b.sh", "/r", ""},
		{"owner-only executable", "", "/sub/deeper/c.sh", "/sub/deeper/c.sh", "", ""},
		{"mounted", "/ws", "/ws/sub/b.sh", "/ws/sub/b.sh", "", ""},
		{"mounted at root", "/", "/a.sh/x", "/a.sh", "/x", ""},
		{"link to a script inside", "", "/alias.sh", "/alias.sh", "", ""},
		{"link to a directory inside", "", "/subalias/b.sh", "/subalias/b.sh", "", ""},
		{"encoded characters", "", "/%61.sh", "/a.sh", "", ""},

		{"missing", "", "/nope.sh", "", "", "no script"},
		{"not executable", "", "/plain.txt", "", "", "not executable"},
		{"hidden", "", "/.hidden.sh", "", "", "hidden"},
		{"in a hidden directory", "", "/.git/hook.sh", "", "", "hidden"},
		{"directory", "", "/sub", "", "", "directory"},
		{"directory with slash", "", "/sub/", "", "", "directory"},
		{"empty directory", "", "/empty/", "", "", "directory"},
		{"root", "", "/", "", "", "directory"},
		{"mount point itself", "/ws", "/ws", "", "", "directory"},
		{"dot dot", "", "/../outside.sh", "", "", `".."`},
		{"dot dot inside", "", "/sub/../a.sh", "", "", `".."`},
		{"encoded dot dot", "", "/%2e%2e/outside.sh", "", "", `".."`},
		{"encoded dot dot, mixed case", "", "/%2E%2e/outside.sh", "", "", `".."`},
		{"dot dot in path info", "", "/a.sh/../../etc", "", "", `".."`},
		{"dot", "", "/./a.sh", "", "", `"."`},
		{"encoded slash", "", "/sub%2fb.sh", "", "", "encoded slash"},
		{"encoded slash, upper case", "", "/sub%2Fb.sh", "", "", "encoded slash"},
		{"encoded dot dot slash", "", "/%2e%2e%2foutside.sh", "", "", "encoded slash"},
		{"NUL", "", "/a.sh%00.txt", "", "", "NUL"},
		{"empty component", "", "//a.sh", "", "", "empty component"},
		{"link out, relative", "", "/escape.sh", "", "", "escape"},
		{"link out, absolute", "", "/escape-abs.sh", "", "", "escape"},
		{"link to the parent", "", "/up/outside.sh", "", "", "escape"},
		{"dangling link", "", "/dangling.sh", "", "", "no script"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ep, err := Endpoint{Path: tc.mount, ScriptDir: dir}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			srv := &Server{}
			r, err := newRoutes([]*endpoint{srv.newEndpoint(ep, nil)})
			if err != nil {
				t.Fatal(err)
			}
			p, err := url.PathUnescape(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, script, info, why := r.lookup(tc.raw, p)
			if tc.script == "" {
				if got != nil || why == nil || !strings.Contains(why.Error(), tc.why) {
					t.Fatalf("lookup(%q) = %v %q %q, %v; want refused with %q", tc.raw, got != nil, script, info, why, tc.why)
				}
				return
			}
			if got == nil || script != tc.script || info != tc.info {
				t.Fatalf("lookup(%q) = %v %q %q, %v; want %q %q", tc.raw, got != nil, script, info, why, tc.script, tc.info)
			}
			rel := strings.TrimPrefix(tc.script, strings.TrimSuffix(tc.mount, "/"))
			want := filepath.Join(dir, filepath.FromSlash(rel))
			if len(got.Command) != 1 || got.Command[0] != want || got.Dir != filepath.Dir(want) || got.ScriptDir != "" {
				t.Errorf("script endpoint runs %q in %q (script dir %q), want %q in its directory", got.Command, got.Dir, got.ScriptDir, want)
			}
			if got.Path != tc.script || !got.Shared.Lazy {
				t.Errorf("script endpoint at %q (lazy %v), want %q, lazy: logs name it, and it is known only once asked for", got.Path, got.Shared.Lazy, tc.script)
			}
			again, _, _, _ := r.lookup(tc.raw, p)
			if again != got {
				t.Errorf("a second lookup made another endpoint for the same script")
			}
		})
	}
}

func TestScriptDirChecked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ep   Endpoint
		want string
	}{
		{"missing", Endpoint{ScriptDir: filepath.Join(dir, "nope")}, "no such file"},
		{"a file", Endpoint{ScriptDir: file}, "not a directory"},
		{"with a command", Endpoint{ScriptDir: dir, Command: []string{"cat"}}, "give one"},
		{"with a working directory", Endpoint{ScriptDir: dir, Dir: "/"}, "their own directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.ep.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("withDefaults: %v, want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("relative is made absolute", func(t *testing.T) {
		t.Chdir(dir)
		if err := os.Mkdir("rel", 0o755); err != nil {
			t.Fatal(err)
		}
		ep, err := Endpoint{ScriptDir: "rel"}.withDefaults()
		if err != nil || ep.ScriptDir != filepath.Join(dir, "rel") {
			t.Fatalf("withDefaults: %q %v, want %q", ep.ScriptDir, err, filepath.Join(dir, "rel"))
		}
	})
}

// FuzzScriptDirResolve: whatever path a client sends, a script --dir
// runs is a file inside the directory, reached through it, never the
// executable outside it that the tree's links point at.
func FuzzScriptDirResolve(f *testing.F) {
	for _, s := range []string{"/a.sh", "/a.sh/x/y", "/sub/b.sh", "/escape.sh", "/up/outside.sh",
		"/%2e%2e/outside.sh", "/sub/../../outside.sh", "/subalias/b.sh", "//a.sh", "/a.sh%2fx", "/.hidden.sh"} {
		f.Add(s)
	}
	dir := scriptTree(f)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		f.Fatal(err)
	}
	d := &scriptDir{dir: dir}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := url.PathUnescape(raw)
		if err != nil {
			return // the handshake refuses it with a 400 first
		}
		rel, _, err := d.resolve(raw, p)
		if err != nil {
			return
		}
		got, err := filepath.EvalSymlinks(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatalf("%q resolved to %q, which does not exist: %v", raw, rel, err)
		}
		if !strings.HasPrefix(got, real+string(filepath.Separator)) {
			t.Fatalf("%q resolved to %q, outside the directory (%s)", raw, got, real)
		}
		st, err := os.Stat(got)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			t.Fatalf("%q resolved to %q, not an executable file", raw, got)
		}
	})
}
