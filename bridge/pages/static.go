//go:build !wsbridge_minimal

package pages

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"
)

// serveStatic serves r from StaticDir. With fallback set, a path
// the directory has nothing at is left to the caller, and serveStatic
// reports false.
func (s *Site) serveStatic(w http.ResponseWriter, r *http.Request, fallback bool) bool {
	// Opened per request: a Server holds no descriptor between requests,
	// and a directory replaced while running is followed. The trailing
	// slash makes the path a directory: one replaced by a FIFO fails with
	// ENOTDIR rather than blocking the open until a writer comes.
	root, err := os.OpenRoot(strings.TrimSuffix(s.StaticDir, "/") + "/")
	if err != nil {
		s.Log.Error("static directory", "err", err)
		http.Error(w, "500 Internal Server Error: cannot open the static directory", http.StatusInternalServerError)
		return true
	}
	defer root.Close()
	fsys := staticFS{root}
	if fallback {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		f, err := fsys.Open(name)
		if err != nil {
			return false
		}
		_ = f.Close()
	}
	http.FileServer(http.FS(fsys)).ServeHTTP(w, r)
	return true
}

// staticFS is what --staticdir shows of a directory: regular files and
// directories with an index.html (no listings), no hidden file, nothing
// outside it (every path goes through an os.Root, which refuses paths
// leading out, symbolic links included).
//
// Nothing a client asks for may block the daemon in the file system: an
// open(2) of a FIFO for reading waits for a writer, and each such request
// would pin an OS thread until the runtime's limit ends the daemon. So a
// special file (FIFO, device, socket) is refused on a stat, before any
// open, and the open that follows is non-blocking, with an fstat of what
// was opened: a file replaced by a FIFO between the two is then refused
// too, without waiting.
type staticFS struct{ root *os.Root }

func (s staticFS) Open(name string) (fs.File, error) {
	notExist := &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	if !fs.ValidPath(name) {
		return nil, notExist
	}
	for _, c := range strings.Split(name, "/") {
		if c != "." && strings.HasPrefix(c, ".") {
			return nil, notExist
		}
	}
	st, err := s.root.Stat(name)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return nil, err
	case err != nil:
		// A path leading out of the directory is, to a client, missing.
		return nil, notExist
	case !servable(st):
		return nil, notExist
	case st.IsDir():
		ist, err := s.root.Stat(path.Join(name, "index.html"))
		if err != nil || !ist.Mode().IsRegular() {
			return nil, notExist
		}
	}
	f, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, err
		}
		return nil, notExist
	}
	if st, err = f.Stat(); err != nil || !servable(st) {
		_ = f.Close()
		return nil, notExist
	}
	return f, nil
}

// servable reports whether a static file may be opened and read: a
// regular file or a directory, never a special file.
func servable(st fs.FileInfo) bool {
	return st.Mode().IsRegular() || st.IsDir()
}
