package bridge

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/bridge/wstest"
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

// whoAmI is a script that says which it is and what it was given.
func whoAmI(name string) string {
	return "#!/bin/sh\nprintf '%s\\n' \"" + name + " SCRIPT_NAME=$SCRIPT_NAME PATH_INFO=$PATH_INFO QUERY_STRING=$QUERY_STRING PWD=$(pwd)\"\n"
}

func TestScriptDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "ws")
	writeFile(t, dir, "a.sh", whoAmI("a"), 0o755)
	writeFile(t, dir, "b.sh", whoAmI("b"), 0o755)
	writeFile(t, dir, "sub/c.sh", whoAmI("c"), 0o755)
	writeFile(t, dir, "plain.sh", whoAmI("plain"), 0o644)
	writeFile(t, dir, ".hidden.sh", whoAmI("hidden"), 0o755)
	// An executable outside the directory, which links inside try to reach.
	writeFile(t, base, "outside.sh", whoAmI("OUTSIDE"), 0o755)
	symlink(t, "../outside.sh", filepath.Join(dir, "escape.sh"))
	symlink(t, filepath.Join(base, "outside.sh"), filepath.Join(dir, "escape-abs.sh"))
	symlink(t, base, filepath.Join(dir, "up"))
	symlink(t, "a.sh", filepath.Join(dir, "alias.sh"))
	lg := newTestLog()
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{{ScriptDir: dir}}, Logger: lg.Logger()})

	t.Run("scripts", func(t *testing.T) {
		for _, tc := range []struct{ path, want string }{
			{"/a.sh", "a SCRIPT_NAME=/a.sh PATH_INFO= QUERY_STRING= PWD=" + dir},
			{"/b.sh/room1?x=1", "b SCRIPT_NAME=/b.sh PATH_INFO=/room1 QUERY_STRING=x=1 PWD=" + dir},
			{"/a.sh/x/y/", "a SCRIPT_NAME=/a.sh PATH_INFO=/x/y/ QUERY_STRING= PWD=" + dir},
			{"/sub/c.sh/more", "c SCRIPT_NAME=/sub/c.sh PATH_INFO=/more QUERY_STRING= PWD=" + filepath.Join(dir, "sub")},
			{"/alias.sh", "a SCRIPT_NAME=/alias.sh PATH_INFO= QUERY_STRING= PWD=" + dir},
		} {
			c := dial(t, addr, tc.path, 0)
			if got := readText(t, c); got != tc.want {
				t.Errorf("%s said %q, want %q", tc.path, got, tc.want)
			}
			if code, reason := serverClose(t, c); code != int(transport.CloseNormal) {
				t.Errorf("%s: close %d %q, want 1000", tc.path, code, reason)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct{ path, why string }{
			{"/missing.sh", "no script missing.sh"},
			{"/plain.sh", "plain.sh is not executable"},
			{"/.hidden.sh", "hidden file .hidden.sh"},
			{"/sub", "/sub is a directory"},
			{"/sub/", "/sub is a directory"},
			{"/", "/ is a directory"},
			{"/../outside.sh", `".." component`},
			{"/sub/../../outside.sh", `".." component`},
			{"/%2e%2e/outside.sh", `".." component`},
			{"/%2E%2E%2Foutside.sh", "encoded slash"},
			{"/sub%2fc.sh", "encoded slash"},
			{"/escape.sh", "escape"},
			{"/escape-abs.sh", "escape"},
			{"/up/outside.sh", "escape"},
			{"/a.sh%00", "NUL"},
		} {
			code, body := upgradeStatus(t, addr, tc.path)
			if code != http.StatusNotFound || strings.Contains(body, "OUTSIDE") {
				t.Errorf("%s: %d %q, want 404", tc.path, code, body)
			}
			if !logged(lg, tc.why, 5*time.Second) {
				t.Errorf("%s: no log line saying %q", tc.path, tc.why)
			}
		}
		if strings.Contains(lg.String(), "OUTSIDE") {
			t.Errorf("the script outside the directory ran")
		}
		// Not an endpoint over plain HTTP either.
		if resp, _ := httpGet(t, "http://"+addr+"/escape.sh"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("plain GET of a refused script: %s, want 404", resp.Status)
		}
		if resp, _ := httpGet(t, "http://"+addr+"/a.sh"); resp.StatusCode != http.StatusUpgradeRequired {
			t.Errorf("plain GET of a script: %s, want 426", resp.Status)
		}
	})

	t.Run("added while running", func(t *testing.T) {
		if code, _ := upgradeStatus(t, addr, "/new.sh"); code != http.StatusNotFound {
			t.Fatalf("/new.sh before it exists: %d, want 404", code)
		}
		writeFile(t, dir, "later/new.sh", whoAmI("new"), 0o755)
		c := dial(t, addr, "/later/new.sh", 0)
		if got, want := readText(t, c), "new SCRIPT_NAME=/later/new.sh PATH_INFO= QUERY_STRING= PWD="+filepath.Join(dir, "later"); got != want {
			t.Errorf("new script said %q, want %q", got, want)
		}
	})
}

// With --shared, each script of --dir has a shared child of its own, and
// shutdown ends them all.
func TestScriptDirShared(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.sh", "#!/bin/sh\nexec /bin/cat\n", 0o755)
	writeFile(t, dir, "b.sh", "#!/bin/sh\nexec /bin/cat\n", 0o755)
	s := serveStoppable(t, Options{Endpoints: []Endpoint{{ScriptDir: dir, Mode: ModeShared}}})
	addr, stop := s.addr, func() error { return s.stop(t, 30*time.Second) }

	// readUntil reads c's messages up to want, which must come.
	readUntil := func(t *testing.T, c *wstest.Conn, want string) {
		t.Helper()
		for readText(t, c) != want {
		}
	}
	a1 := dial(t, addr, "/a.sh", 0)
	a2 := dial(t, addr, "/a.sh", 0)
	other := dial(t, addr, "/b.sh", 0)
	// Once a2 hears itself it has joined, and so has a1, which came first.
	send(t, a2, "a2 here", 0)
	readUntil(t, a2, "a2 here")
	send(t, a1, "to every client of a.sh", 0)
	readUntil(t, a1, "to every client of a.sh")
	readUntil(t, a2, "to every client of a.sh")
	send(t, other, "b only", 0)
	if got := readText(t, other); got != "b only" {
		t.Errorf("the client of b.sh got %q first, want only what b.sh's own child wrote", got)
	}

	// The clients read on, so they answer the close frames.
	ended := make(chan int, 3)
	for _, c := range []*wstest.Conn{a1, a2, other} {
		go func() {
			for {
				_, _, closed, err := c.ReadMessage(20 * time.Second)
				if errors.Is(err, wstest.ErrClosed) {
					_ = c.WriteFrame(true, wstest.OpClose, closed.Payload[:min(2, len(closed.Payload))])
					ended <- closed.CloseCode()
					return
				}
				if err != nil {
					ended <- 0
					return
				}
			}
		}()
	}
	// What the daemon does at SIGTERM; its exit status 0 is Serve's nil.
	if err := stop(); err != nil {
		t.Fatalf("Serve after its context ended: %v, want nil", err)
	}
	for range 3 {
		if code := <-ended; code != int(transport.CloseGoingAway) {
			t.Errorf("a client ended with close %d at shutdown, want 1001", code)
		}
	}
}
