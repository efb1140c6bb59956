package main

// systemd socket activation (sd_listen_fds(3)): a .socket unit with
// Accept=no listens, and passes its sockets to wsbridge as descriptors 3,
// 4, ... with LISTEN_PID=<wsbridge's pid>, LISTEN_FDS=<how many> and,
// optionally, LISTEN_FDNAMES=<name>:<name>...

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// passedFD is one descriptor socket activation passed, and its name.
type passedFD struct {
	fd   int
	name string // from LISTEN_FDNAMES; "" when not given
}

// passedFDs returns the descriptors passed to this process, none when
// LISTEN_PID names another (a parent's variables, inherited). Like
// sd_listen_fds(unset=1) it unsets the variables in every case, so that
// no child of wsbridge takes the sockets for its own.
func passedFDs() ([]passedFD, error) {
	pid, nfds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		_ = os.Unsetenv(v)
	}
	if pid == "" || nfds == "" || pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(nfds)
	if err != nil || n < 0 || n > 1<<16 {
		return nil, badSetup("socket activation: LISTEN_FDS=%q is not a number of descriptors", nfds)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	fds := make([]passedFD, n)
	for i := range fds {
		fds[i].fd = listenFDsStart + i
		if i < len(nameList) {
			fds[i].name = nameList[i]
		}
		// Ours alone: a child of wsbridge must not hold the port open.
		syscall.CloseOnExec(fds[i].fd)
	}
	return fds, nil
}

// describe names a passed descriptor in an error or a log line.
func (p passedFD) describe() string {
	if p.name != "" {
		return fmt.Sprintf("fd %d (%s)", p.fd, p.name)
	}
	return fmt.Sprintf("fd %d", p.fd)
}

// activatedListeners turns the passed descriptors into listeners. Each
// must be a listening stream socket: anything else is a unit that does
// not fit wsbridge, said as such, not a server that starts and never
// answers.
func activatedListeners(fds []passedFD, log *slog.Logger) ([]net.Listener, error) {
	var ls []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	for _, p := range fds {
		kind, listening := socketKind(p.fd)
		switch {
		case kind != "":
			return fail(badSetup("socket activation: %s is %s: wsbridge wants listening stream sockets (ListenStream= in the .socket unit)", p.describe(), kind))
		case !listening:
			return fail(badSetup("socket activation: %s is a connected socket, not a listening one (Accept=yes?): for one wsbridge per connection, give the service StandardInput=socket and run wsbridge --inetd", p.describe()))
		}
		f := os.NewFile(uintptr(p.fd), p.describe())
		l, err := net.FileListener(f) // a close-on-exec duplicate
		f.Close()
		if err != nil {
			return fail(badSetup("socket activation: %s: %w", p.describe(), err))
		}
		ls = append(ls, l)
		where := []any{"url", "http://" + l.Addr().String() + "/"}
		if l.Addr().Network() == "unix" {
			where = []any{"socket", l.Addr().String()}
		}
		args := append(where, "from", "systemd socket activation", "fd", p.fd)
		if p.name != "" {
			args = append(args, "name", p.name)
		}
		log.Info("listening", args...)
	}
	return ls, nil
}
