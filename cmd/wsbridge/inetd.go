package main

// --inetd: one connection, already accepted, on stdin and stdout (inetd
// nowait, xinetd, systemd Accept=yes with StandardInput=socket), served
// through the same Server as a listening daemon, until it is done.

import (
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// setupError is a start-up error of how wsbridge was started (the
// descriptors it was given): main exits 2 for it, as for a bad flag, so a
// unit with RestartPreventExitStatus=2 does not retry it in a loop.
type setupError struct{ error }

func (e setupError) Unwrap() error { return e.error }

func badSetup(format string, args ...any) error {
	return setupError{fmt.Errorf(format, args...)}
}

// socketKind describes the descriptor fd: "" for a stream socket, or what
// it is instead, in words; listening reports whether it accepts
// connections.
func socketKind(fd int) (kind string, listening bool) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return "not an open descriptor", false
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFSOCK:
	case syscall.S_IFIFO:
		return "a pipe", false
	case syscall.S_IFCHR:
		return "a terminal or device", false
	case syscall.S_IFREG:
		return "a file", false
	default:
		return "not a socket", false
	}
	typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
	if err != nil || typ != syscall.SOCK_STREAM {
		return "a socket but not a stream (TCP or unix stream) socket", false
	}
	acc, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	return "", err == nil && acc != 0
}

// sameFile reports whether descriptors a and b are the same open socket
// or file (inetd passes one socket as 0, 1 and 2).
func sameFile(a, b int) bool {
	var sa, sb syscall.Stat_t
	if syscall.Fstat(a, &sa) != nil || syscall.Fstat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// isSocket reports whether fd is a socket.
func isSocket(fd int) bool {
	var st syscall.Stat_t
	return syscall.Fstat(fd, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFSOCK
}

// logSink is where wsbridge logs: stderr, unless stderr is the client's
// connection itself (inetd and xinetd pass the socket as fds 0, 1 and 2),
// where a log line would reach the browser. Then logs go to syslog
// (facility daemon), or nowhere without a syslog daemon, and fd 2 becomes
// /dev/null so that nothing else, not even a crash, writes to the client.
func logSink() io.Writer {
	if !isSocket(2) || !(sameFile(2, 0) || sameFile(2, 1)) {
		return os.Stderr
	}
	nullFD(2)
	if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "wsbridge"); err == nil {
		return w
	}
	return io.Discard
}

// nullFD points fd at /dev/null: the number stays taken, so no socket or
// pipe opened later gets it and receives what is written to stdout.
func nullFD(fd int) {
	null, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = syscall.Close(fd)
		return
	}
	_ = unix.Dup2(null, fd) // dup2 clears close-on-exec on fd: harmless, children get their own 0-2
	_ = syscall.Close(null)
}

// inetdConn takes the connection on descriptor fd (0: stdin) and leaves
// wsbridge the only holder of it: fds 0 and 1 become /dev/null, or the
// peer would never see the connection close.
func inetdConn(fd int, from string) (net.Conn, error) {
	kind, listening := socketKind(fd)
	switch {
	case kind != "":
		return nil, badSetup("--inetd: %s is %s: it must be the client's connection, a connected TCP socket, as inetd, xinetd or systemd (Accept=yes, StandardInput=socket) pass it", from, kind)
	case listening:
		return nil, badSetup("--inetd: %s is a listening socket (inetd \"wait\", systemd Accept=no): --inetd wants one accepted connection; for a listening socket, run wsbridge without --inetd under systemd socket activation", from)
	}
	f := os.NewFile(uintptr(fd), from)
	conn, err := net.FileConn(f) // a duplicate, close-on-exec
	if err != nil {
		return nil, badSetup("--inetd: %s: %w", from, err)
	}
	if fd == 0 {
		// Asked before fd 0 is /dev/null, which fd 1 never is.
		stdout := sameFile(1, 0)
		nullFD(0)
		if stdout {
			nullFD(1)
		}
	} else {
		_ = f.Close()
	}
	return conn, nil
}

// oneConnListener hands out one connection, then blocks in Accept until
// it is closed. finished is closed once the connection has been.
type oneConnListener struct {
	conn     chan net.Conn
	addr     net.Addr
	finished chan struct{}
	closed   chan struct{}
	close    sync.Once
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{conn: make(chan net.Conn, 1), addr: c.LocalAddr(), finished: make(chan struct{}), closed: make(chan struct{})}
	l.conn <- &finishConn{Conn: c, finished: l.finished}
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conn:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.close.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }

// finishConn is the connection of --inetd: it tells its listener when the
// server has closed it. It keeps what the server looks for in a *TCPConn:
// the raw descriptor (to park an idle connection on the poller) and the
// half-close (a clean FIN after an answer).
type finishConn struct {
	net.Conn
	finished chan struct{}
	once     sync.Once
}

func (c *finishConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.finished) })
	return err
}

func (c *finishConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

func (c *finishConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
