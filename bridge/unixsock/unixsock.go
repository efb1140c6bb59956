// Package unixsock makes the daemon's unix sockets (the hand-over socket,
// --unixsocket) the one careful way: a live socket at the path is never
// replaced, a stale one is, and no one can connect before the socket has
// its mode and owner.
//
// It is a leaf: it imports nothing of the project.
package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Perm is the socket file's permissions and owner.
type Perm struct {
	Mode     fs.FileMode // 0: 0660
	UID, GID int         // set when > 0
}

// Listener is a unix socket listener whose Close removes its socket file,
// unless another daemon has put its own at the path since.
type Listener struct {
	*net.UnixListener
	path string
	ino  uint64
}

// Listen makes a socket of network ("unix" or "unixpacket") at path and
// listens on it.
func Listen(network, path string, perm Perm) (*Listener, error) {
	if perm.Mode == 0 {
		perm.Mode = 0o660
	}
	if err := removeStale(network, path); err != nil {
		return nil, err
	}
	ln, ino, err := bindPrivately(network, path, perm)
	if err != nil {
		return nil, err
	}
	return &Listener{UnixListener: ln, path: path, ino: ino}, nil
}

// Close stops listening and removes the socket file it made.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	var st unix.Stat_t
	if unix.Lstat(l.path, &st) == nil && st.Ino == l.ino {
		_ = os.Remove(l.path)
	}
	return err
}

// removeStale removes a socket at path that no daemon answers on.
func removeStale(network, path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket: remove it or choose another path", path)
	}
	c, err := net.DialTimeout(network, path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("a daemon (another wsbridge?) is serving %s: stop it or choose another path", path)
	case !errors.Is(err, syscall.ECONNREFUSED):
		// Only a socket nothing is bound to refuses: another kind
		// (EPROTOTYPE), a full backlog (EAGAIN) is a live one's.
		return fmt.Errorf("%s is a socket in use (%w): stop what serves it or choose another path", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the stale %s: %w", path, err)
	}
	return nil
}

// bindPrivately makes the socket in a new directory beside path that only
// the daemon can enter, gives it its mode and owner there, and renames it
// to path. No one can connect before its mode is set, and neither chmod
// nor chown can be led along a link someone put at path: rename replaces
// the link itself. It returns the listener and the socket file's inode.
func bindPrivately(network, path string, perm Perm) (*net.UnixListener, uint64, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".wsb-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix(network, &net.UnixAddr{Name: tmp, Net: network})
	if err != nil {
		return nil, 0, err
	}
	ln.SetUnlinkOnClose(false) // the name changes: Close removes path itself
	fail := func(err error) (*net.UnixListener, uint64, error) {
		ln.Close()
		return nil, 0, err
	}
	if err := os.Chmod(tmp, perm.Mode); err != nil {
		return fail(err)
	}
	uid, gid := -1, -1
	if perm.UID > 0 {
		uid = perm.UID
	}
	if perm.GID > 0 {
		gid = perm.GID
	}
	if uid >= 0 || gid >= 0 {
		if err := os.Lchown(tmp, uid, gid); err != nil {
			return fail(err)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(tmp, &st); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return ln, st.Ino, nil
}

// Addr is the socket's path (the listener was bound under a temporary
// name before the rename).
func (l *Listener) Addr() net.Addr {
	return &net.UnixAddr{Name: l.path, Net: l.UnixListener.Addr().Network()}
}
