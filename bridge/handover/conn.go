package handover

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a connection handed over: the client's socket (or the web
// server's pipes) and the request that came with it. Its RemoteAddr is
// the client's, as the web server saw it.
type Conn struct {
	net.Conn
	req Request
}

// Handed returns the request the connection was handed over with.
func (c *Conn) Handed() Request { return c.req }

// RemoteAddr returns the client's address: REMOTE_ADDR and REMOTE_PORT.
func (c *Conn) RemoteAddr() net.Addr { return c.req.Remote }

// LocalAddr returns the web server's address when the message gave it.
func (c *Conn) LocalAddr() net.Addr {
	if c.req.Local != nil {
		return c.req.Local
	}
	return c.Conn.LocalAddr()
}

// SyscallConn gives the descriptor reads wait on, so an idle handed-over
// connection parks as one accepted by the daemon does.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// WriteSyscallConn gives the descriptor writes go to: the socket, or the
// write end of the pipes.
func (c *Conn) WriteSyscallConn() (syscall.RawConn, error) {
	if p, ok := c.Conn.(*pipeConn); ok {
		return p.WriteSyscallConn()
	}
	return c.SyscallConn()
}

// CloseWrite ends the direction to the client.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// fromDescriptors makes the connection of the descriptors a message
// carried: one stream socket, or a read end and a write end. It owns
// them: on error they are closed.
func fromDescriptors(fds []int) (net.Conn, error) {
	closeAll := func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}
	switch len(fds) {
	case 1:
		if err := isStreamSocket(fds[0]); err != nil {
			closeAll()
			return nil, err
		}
		f := os.NewFile(uintptr(fds[0]), "handed-over socket")
		c, err := net.FileConn(f) // a duplicate of the descriptor
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("the descriptor handed over: %w", err)
		}
		return c, nil
	case 2:
		if err := canTransfer(fds[0], unix.O_RDONLY); err != nil {
			closeAll()
			return nil, fmt.Errorf("the first descriptor (to read from): %w", err)
		}
		if err := canTransfer(fds[1], unix.O_WRONLY); err != nil {
			closeAll()
			return nil, fmt.Errorf("the second descriptor (to write to): %w", err)
		}
		return newPipeConn(fds[0], fds[1])
	default:
		closeAll()
		return nil, fmt.Errorf("%d descriptors handed over: want 1 (a socket) or 2 (a read end, a write end)", len(fds))
	}
}

// isStreamSocket checks that fd is a connected stream socket.
func isStreamSocket(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("the descriptor handed over: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("the descriptor handed over is not a socket (%s)", fileKind(st.Mode))
	}
	if t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_STREAM {
		return errors.New("the socket handed over is not a stream socket")
	}
	if _, err := unix.Getpeername(fd); err != nil {
		return fmt.Errorf("the socket handed over is not connected: %w", err)
	}
	return nil
}

// canTransfer checks that fd is a pipe or a socket open for the access
// (O_RDONLY: reading, O_WRONLY: writing).
func canTransfer(fd int, access int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if k := st.Mode & unix.S_IFMT; k != unix.S_IFIFO && k != unix.S_IFSOCK {
		return fmt.Errorf("not a pipe or a socket (%s)", fileKind(st.Mode))
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if mode := fl & unix.O_ACCMODE; mode != access && mode != unix.O_RDWR {
		if access == unix.O_RDONLY {
			return errors.New("not open for reading")
		}
		return errors.New("not open for writing")
	}
	return nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFIFO:
		return "a pipe"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "an unusual file"
}

// pipeConn is a connection over two descriptors: what is read comes from
// r, what is written goes to w (lighttpd relays the client's bytes to a
// CGI's stdin and its stdout back). Both are non-blocking, in the Go
// runtime's poller, so deadlines work as on a socket.
type pipeConn struct {
	r, w *os.File
}

func newPipeConn(rfd, wfd int) (*pipeConn, error) {
	for _, fd := range []int{rfd, wfd} {
		if err := unix.SetNonblock(fd, true); err != nil {
			_ = unix.Close(rfd)
			_ = unix.Close(wfd)
			return nil, fmt.Errorf("the descriptors handed over: %w", err)
		}
	}
	// Non-blocking descriptors go to the runtime's poller.
	return &pipeConn{r: os.NewFile(uintptr(rfd), "handed-over input"), w: os.NewFile(uintptr(wfd), "handed-over output")}, nil
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p *pipeConn) Close() error {
	err := p.r.Close()
	if werr := p.w.Close(); err == nil {
		err = werr
	}
	return err
}

// CloseWrite ends the output: the web server sees the end of the CGI's
// response.
func (p *pipeConn) CloseWrite() error { return p.w.Close() }

func (p *pipeConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (p *pipeConn) RemoteAddr() net.Addr { return pipeAddr{} }

func (p *pipeConn) SetDeadline(t time.Time) error {
	err := p.r.SetReadDeadline(t)
	if werr := p.w.SetWriteDeadline(t); err == nil {
		err = werr
	}
	return err
}
func (p *pipeConn) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *pipeConn) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }

func (p *pipeConn) SyscallConn() (syscall.RawConn, error)      { return p.r.SyscallConn() }
func (p *pipeConn) WriteSyscallConn() (syscall.RawConn, error) { return p.w.SyscallConn() }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
