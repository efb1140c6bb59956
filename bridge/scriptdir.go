package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// scriptDir is the state of an endpoint that serves a directory of scripts
// (Endpoint.ScriptDir): each executable file in it is an endpoint of its
// own, looked up at each request so scripts may be added while running.
//
// The lookup is where websocketd 0.4.1 had its holes (a symbolic link or a
// ".." led out of the directory), so every step goes through an os.Root,
// which refuses any path that leaves the directory, symbolic links
// included. A script replaced by a link between the lookup and the exec
// could still lead out; whoever can do that can write into the directory,
// and so can run anything already.
type scriptDir struct {
	dir   string                              // absolute
	self  *endpoint                           // the directory's endpoint: what each script's starts from
	build func(Endpoint, *endpoint) *endpoint // the server's newEndpoint

	mu      sync.Mutex
	scripts map[string]*endpoint // by slash path below dir, e.g. "sub/x.sh"
	stopped bool                 // Serve is ending: shared children stop, or never start
}

func newScriptDir(self *endpoint, build func(Endpoint, *endpoint) *endpoint) *scriptDir {
	return &scriptDir{dir: self.ScriptDir, self: self, build: build, scripts: map[string]*endpoint{}}
}

// checkScriptDir checks, at startup, the directory of ep (which has a
// ScriptDir) and makes it absolute: scripts run with their own working
// directory, so a relative one would mean something else to them.
func (ep *Endpoint) checkScriptDir() error {
	if ep.Dir != "" {
		return errors.New("a working directory and a script directory: scripts run in their own directory")
	}
	abs, err := filepath.Abs(ep.ScriptDir)
	if err != nil {
		return fmt.Errorf("script directory: %w", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("script directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("script directory %s is not a directory", abs)
	}
	ep.ScriptDir = abs
	return nil
}

// resolve walks rest, a decoded path below the mount point ("/x.sh/more"),
// one component at a time under the directory: the first regular file is
// the script, its slash path below the directory is rel, and what follows
// it is info (PATH_INFO). raw is the whole request path, undecoded.
func (d *scriptDir) resolve(raw, rest string) (rel, info string, err error) {
	lower := strings.ToLower(raw)
	switch {
	case strings.Contains(lower, "%2f"):
		// A slash that is not a separator: as Apache does, refuse rather
		// than guess which it is.
		return "", "", errors.New("encoded slash (%2F) in the path")
	case strings.IndexByte(rest, 0) >= 0:
		return "", "", errors.New("NUL byte in the path")
	}
	comps := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	for _, c := range comps {
		if c == "." || c == ".." {
			return "", "", fmt.Errorf("%q component in the path", c)
		}
	}
	root, err := openRoot(d.dir)
	if err != nil {
		return "", "", fmt.Errorf("script directory: %w", err)
	}
	defer root.Close()
	for i, c := range comps {
		switch {
		case c == "" && i == len(comps)-1:
			return "", "", fmt.Errorf("/%s is a directory, not a script", rel)
		case c == "":
			return "", "", errors.New("empty component (//) in the path")
		case c[0] == '.':
			return "", "", fmt.Errorf("hidden file %s", path.Join(rel, c))
		}
		rel = path.Join(rel, c)
		// Stat follows symbolic links, and os.Root refuses one that
		// leads out of the directory.
		st, err := root.Stat(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", "", fmt.Errorf("no script %s", rel)
		case err != nil:
			return "", "", err
		case st.IsDir():
			if i == len(comps)-1 {
				return "", "", fmt.Errorf("/%s is a directory, not a script", rel)
			}
			continue
		case !st.Mode().IsRegular():
			return "", "", fmt.Errorf("%s is not a regular file", rel)
		case st.Mode().Perm()&0o111 == 0:
			return "", "", fmt.Errorf("%s is not executable", rel)
		}
		if i+1 < len(comps) {
			info = "/" + strings.Join(comps[i+1:], "/")
		}
		return rel, info, nil
	}
	return "", "", errors.New("no script in the path") // not reached: the last component ends the walk
}

// endpoint returns the endpoint of the script at rel (a path resolve
// returned), made at its first use: per-script state, such as a shared
// child, is one per script.
func (d *scriptDir) endpoint(rel string) *endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ep := d.scripts[rel]; ep != nil {
		return ep
	}
	e := d.self.Endpoint
	e.Path = strings.TrimSuffix(e.Path, "/") + "/" + rel // its name in logs
	e.ScriptDir = ""
	e.Command = []string{filepath.Join(d.dir, filepath.FromSlash(rel))}
	e.Dir = filepath.Dir(e.Command[0])
	// A script is only known once a client asks for it.
	e.Shared.Lazy = true
	// --cgi-total and --assembly-budget bound the whole directory.
	ep := d.build(e, d.self)
	d.scripts[rel] = ep
	if d.stopped && ep.hub != nil {
		ep.hub.Shutdown() // found as Serve ends: its clients are turned away
	}
	return ep
}

// shutdown stops the shared children of the scripts, as Serve ends, and
// of any script found from now on.
func (d *scriptDir) shutdown() {
	d.mu.Lock()
	d.stopped = true
	eps := make([]*endpoint, 0, len(d.scripts))
	for _, ep := range d.scripts {
		eps = append(eps, ep)
	}
	d.mu.Unlock()
	for _, ep := range eps {
		if ep.hub != nil {
			ep.hub.Shutdown()
		}
	}
}

// openRoot is os.OpenRoot for a directory opened at each request (a
// directory replaced while running is followed), with a trailing slash:
// the path must then be a directory, so one replaced by a FIFO fails
// with ENOTDIR rather than blocking the open until a writer comes.
func openRoot(dir string) (*os.Root, error) {
	return os.OpenRoot(strings.TrimSuffix(dir, "/") + "/")
}
