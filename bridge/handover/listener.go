package handover

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/bridge/unixsock"
)

// Config is how a Listener's socket is made and whom it takes
// connections from. The zero value is a socket of mode 0660 that only
// root and the daemon's own user may hand over to.
type Config struct {
	Mode     fs.FileMode // the socket file's permissions; 0: 0660
	UID, GID int         // the socket file's owner and group, set when > 0

	// Allow says whether a sender, by the credentials the kernel gives
	// (SO_PEERCRED), may hand over. nil: root and the daemon's own uid.
	Allow func(uid, gid uint32) bool

	Log *slog.Logger // nil: slog.Default()

	// Timeout bounds how long a connected sender has to send its
	// message; 0: 2 s.
	Timeout time.Duration
}

// maxPending bounds the hand-overs being received at once: a local
// program that connects and sends nothing holds one for Timeout.
const maxPending = 64

// Listener yields the connections handed over on its unix socket, as a
// net.Listener yields the ones it accepts.
type Listener struct {
	ln   *unixsock.Listener
	path string
	cfg  Config
	log  *slog.Logger

	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	pending chan struct{} // a slot per hand-over being received
	wg      sync.WaitGroup
}

// Listen makes the hand-over socket at path and starts taking
// hand-overs. A socket left at path by a daemon that is gone is replaced;
// one a live daemon answers on is not.
func Listen(path string, cfg Config) (*Listener, error) {
	if cfg.Mode == 0 {
		cfg.Mode = 0o660
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	ln, err := unixsock.Listen("unixpacket", path, unixsock.Perm{Mode: cfg.Mode, UID: cfg.UID, GID: cfg.GID})
	if err != nil {
		return nil, fmt.Errorf("hand-over socket: %w", err)
	}
	l := &Listener{
		ln: ln, path: path, cfg: cfg, log: log,
		conns: make(chan net.Conn), done: make(chan struct{}), pending: make(chan struct{}, maxPending),
	}
	l.wg.Go(l.acceptLoop)
	return l, nil
}

// Accept waits for the next connection handed over: a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops taking hand-overs, removes the socket and waits for the
// hand-overs being received; their connections are closed.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close() // and the file, unless another daemon's is there now
		l.wg.Wait()
	})
	return err
}

// Addr returns the socket's address.
func (l *Listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unixpacket"} }

func (l *Listener) acceptLoop() {
	var delay time.Duration
	for {
		uc, err := l.ln.AcceptUnix()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			// Out of descriptors, say: wait and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Error("hand-over: accept", "err", err, "retry", delay)
			select {
			case <-time.After(delay):
				continue
			case <-l.done:
				return
			}
		}
		delay = 0
		select {
		case l.pending <- struct{}{}:
		default:
			l.log.Warn("refused: hand-over: too many being received at once", "max", maxPending)
			uc.Close()
			continue
		}
		l.wg.Go(func() {
			defer func() { <-l.pending }()
			l.receive(uc)
		})
	}
}

// receive takes one sender's hand-over and answers it.
func (l *Listener) receive(uc *net.UnixConn) {
	defer uc.Close()
	uid, gid, pid, err := peerCred(uc)
	if err != nil {
		l.log.Warn("refused: hand-over: no credentials", "err", err)
		return
	}
	_ = uc.SetDeadline(time.Now().Add(l.cfg.Timeout))
	msg := make([]byte, MaxMessage+1) // one more: a longer message shows as truncated
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, flags, err := recvmsg(uc, msg, oob)
	if errors.Is(err, errNoMessage) {
		// A probe (another daemon checking the socket is live, say).
		l.log.Debug("hand-over: connected and closed", "pid", pid)
		return
	}
	if err != nil {
		l.log.Warn("refused: hand-over: no message", "pid", pid, "err", err)
		return
	}
	fds, ferr := rights(oob[:oobn])
	// The message is read before a sender is refused: closing on it
	// unread would reset the connection, and the sender would never see
	// why.
	if !l.allowed(uid, gid) {
		closeFDs(fds)
		l.log.Warn("refused: hand-over from a user not allowed (see --handover-allow)", "uid", uid, "gid", gid, "pid", pid)
		reply(uc, "DENY user "+fmt.Sprint(uid)+" (group "+fmt.Sprint(gid)+") may not hand over to this daemon")
		return
	}
	var conn net.Conn
	if ferr == nil {
		if flags&unix.MSG_CTRUNC != 0 {
			ferr = errors.New("more than 2 descriptors handed over")
			closeFDs(fds)
		} else {
			conn, ferr = fromDescriptors(fds)
		}
	}
	var req Request
	switch {
	case ferr != nil:
		err = ferr
	case n > MaxMessage || flags&unix.MSG_TRUNC != 0:
		err = ErrTooLarge
	default:
		req, err = Decode(msg[:n])
	}
	if err != nil {
		l.log.Warn("refused: hand-over", "pid", pid, "uid", uid, "err", err)
		if conn != nil {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write([]byte(badRequest(err)))
			conn.Close()
		}
		reply(uc, "ERR "+err.Error())
		return
	}
	if err := reply(uc, "OK"); err != nil {
		// The sender gave up waiting and has answered 503 itself: the
		// connection is not the daemon's to answer.
		l.log.Warn("refused: hand-over: the sender left before the answer", "pid", pid, "err", err)
		conn.Close()
		return
	}
	c := &Conn{Conn: conn, req: req}
	select {
	case l.conns <- c:
	case <-l.done:
		conn.Close()
	}
}

func (l *Listener) allowed(uid, gid uint32) bool {
	if l.cfg.Allow != nil {
		return l.cfg.Allow(uid, gid)
	}
	return uid == 0 || int(uid) == os.Getuid()
}

// badRequest is the answer to a request whose hand-over is refused.
func badRequest(err error) string {
	body := "400 Bad Request: the web server handed over a request wsbridge cannot serve: " + err.Error() + "\n"
	return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
		fmt.Sprint(len(body)) + "\r\nConnection: close\r\n\r\n" + body
}

// reply answers the sender, never waiting long for it.
func reply(uc *net.UnixConn, s string) error {
	_ = uc.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := uc.Write([]byte(s))
	return err
}

// peerCred returns the sender's credentials as the kernel recorded them
// when it connected.
func peerCred(uc *net.UnixConn) (uid, gid uint32, pid int32, err error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, 0, err
	}
	if cerr != nil {
		return 0, 0, 0, cerr
	}
	return cred.Uid, cred.Gid, cred.Pid, nil
}

var errNoMessage = errors.New("the sender closed without a message")

// recvmsg reads one message and its control messages, the descriptors
// close-on-exec from the start: a child forked meanwhile must not
// inherit a client's connection.
func recvmsg(uc *net.UnixConn, msg, oob []byte) (n, oobn, flags int, err error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), msg, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	switch {
	case err != nil:
		return 0, 0, 0, err
	case rerr != nil:
		return 0, 0, 0, rerr
	case n == 0 && oobn == 0:
		return 0, 0, 0, errNoMessage
	}
	return n, oobn, flags, nil
}

// rights returns the descriptors the control messages carried.
func rights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("malformed control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("malformed descriptors: %w", err)
		}
		fds = append(fds, got...)
	}
	if len(fds) == 0 {
		return nil, errors.New("no descriptor handed over")
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
