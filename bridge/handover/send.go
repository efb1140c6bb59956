package handover

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSocket is where a sender looks for the daemon when neither its
// command line nor $WSBRIDGE_HANDOVER says.
const DefaultSocket = "/run/wsbridge.sock"

// DefaultTimeout bounds a sender's wait for the daemon's answer.
const DefaultTimeout = 5 * time.Second

// Refused is the daemon's answer to a hand-over it would not take.
type Refused struct {
	Reason string
	// Taken says the daemon took the connection (and answered the
	// client itself, where it could): the sender must not write to it.
	Taken bool
}

func (r *Refused) Error() string { return "the daemon refused the hand-over: " + r.Reason }

// ErrNoDaemon says no daemon took the hand-over: none listens at the
// socket, or it did not answer in time.
var ErrNoDaemon = errors.New("no wsbridge daemon answers")

// Send hands the connection on fds (one socket, or a read end and a
// write end) to the daemon at socket, with the request's CGI environment,
// and waits up to timeout for the answer. nil: the daemon has the
// connection; the caller closes its own descriptors and exits.
func Send(socket string, fds []int, environ []string, timeout time.Duration) error {
	msg, err := Encode(environ)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("unixpacket", socket, timeout)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrNoDaemon, socket, err)
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	_ = uc.SetDeadline(time.Now().Add(timeout))
	_, _, werr := uc.WriteMsgUnix(msg, unix.UnixRights(fds...), nil)
	// A daemon that refuses a sender answers before it reads: its
	// answer may be there even when the message could not go.
	answer := make([]byte, 1024)
	n, err := uc.Read(answer)
	switch {
	case err != nil && werr != nil:
		return fmt.Errorf("%w at %s: sending: %w", ErrNoDaemon, socket, werr)
	case err != nil:
		return fmt.Errorf("%w at %s: no answer: %w", ErrNoDaemon, socket, err)
	}
	switch a := string(answer[:n]); {
	case a == "OK":
		return nil
	case strings.HasPrefix(a, "ERR "):
		return &Refused{Reason: a[len("ERR "):], Taken: true}
	case strings.HasPrefix(a, "DENY "):
		return &Refused{Reason: a[len("DENY "):]}
	default:
		return &Refused{Reason: fmt.Sprintf("an answer this program does not understand: %q", clip(a))}
	}
}

// CGIDescriptors returns what a CGI hands over: its stdout alone when
// that is the client's socket (boa's nph- CGIs), else its stdin and
// stdout (the pipes lighttpd relays an upgraded connection through).
func CGIDescriptors() (fds []int, socket bool) {
	var st unix.Stat_t
	if unix.Fstat(1, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		return []int{1}, true
	}
	return []int{0, 1}, false
}

// Unavailable answers the client when the hand-over failed: a whole
// response on a socket, a CGI response (Status:) on a pipe.
func Unavailable(w io.Writer, socket bool, why string) error {
	body := "503 Service Unavailable: " + why + "\n"
	var head string
	if socket {
		head = "HTTP/1.0 503 Service Unavailable\r\nConnection: close\r\n"
	} else {
		head = "Status: 503 Service Unavailable\r\n"
	}
	_, err := fmt.Fprintf(w, "%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nRetry-After: 5\r\n\r\n%s", head, len(body), body)
	return err
}

// Hand is the whole hand-over program, as a CGI runs it: it hands its
// connection to the daemon at socket and returns the exit status. When
// the daemon is not there, or refuses without taking the connection, it
// answers 503 on the connection itself; either way it writes one line to
// stderr, which the web server logs.
func Hand(socket string, timeout time.Duration, environ []string, stderr io.Writer) int {
	fds, isSocket := CGIDescriptors()
	err := Send(socket, fds, environ, timeout)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "wsbridge hand-over:", err)
	var ref *Refused
	switch {
	case errors.As(err, &ref) && ref.Taken:
		// The daemon answered the client.
	case errors.Is(err, ErrNoDaemon):
		_ = Unavailable(os.Stdout, isSocket, "the wsbridge daemon is not running at "+socket+" (or does not answer)")
	default:
		// The reason is in the web server's log, not for the client.
		_ = Unavailable(os.Stdout, isSocket, "wsbridge refused the hand-over of this request (the web server's error log says why)")
	}
	return 1
}
