//go:build !wsbridge_minimal

package bridge

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// serveStatic serves r from Options.StaticDir. With fallback set, a path
// the directory has nothing at is left to the caller, and serveStatic
// reports false.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request, fallback bool) bool {
	// Opened per request: a Server holds no descriptor between requests,
	// and a directory replaced while running is followed.
	root, err := os.OpenRoot(s.opts.StaticDir)
	if err != nil {
		s.log.Error("static directory", "err", err)
		http.Error(w, "500 Internal Server Error: cannot open the static directory", http.StatusInternalServerError)
		return true
	}
	defer root.Close()
	fsys := staticFS{root.FS()}
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
// outside it (fsys comes from an os.Root, which refuses paths leading out,
// symbolic links included).
type staticFS struct{ fsys fs.FS }

func (s staticFS) Open(name string) (fs.File, error) {
	for _, c := range strings.Split(name, "/") {
		if c != "." && strings.HasPrefix(c, ".") {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, err
		}
		// A path leading out of the directory is, to a client, missing.
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	st, err := f.Stat()
	switch {
	case err != nil:
	case st.IsDir():
		var ist fs.FileInfo
		if ist, err = fs.Stat(s.fsys, path.Join(name, "index.html")); err == nil && !ist.Mode().IsRegular() {
			err = fs.ErrNotExist
		}
	case !st.Mode().IsRegular():
		err = fs.ErrNotExist // a FIFO would hang the request
	}
	if err != nil {
		_ = f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return f, nil
}
