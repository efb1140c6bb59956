package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startGrandchild starts this program in sleep mode and returns its PID.
// It is never waited for: when we exit it is reparented. Not detached, it
// stays in our process group with its stdio on /dev/null; detached, it
// gets a session of its own and keeps our stdout and stderr.
func startGrandchild(detach bool) int {
	self, err := os.Executable()
	if err != nil {
		fail(err.Error())
	}
	null, err := syscall.Open(os.DevNull, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		fail(err.Error())
	}
	attr := &syscall.ProcAttr{Files: []uintptr{uintptr(null), uintptr(null), uintptr(null)}}
	if detach {
		attr.Files[1], attr.Files[2] = 1, 2
		attr.Sys = &syscall.SysProcAttr{Setsid: true}
	}
	pid, err := syscall.ForkExec(self, []string{self, "sleep"}, attr)
	if err != nil {
		fail(err.Error())
	}
	syscall.Close(null)
	return pid
}

// escape runs the middle process of a double fork and returns the PID of
// the grandchild it left behind, which is reparented (to the nearest
// subreaper, or init) once the middle exits.
func escape(unmarked bool) int {
	self, err := os.Executable()
	if err != nil {
		fail(err.Error())
	}
	r, w, err := os.Pipe()
	if err != nil {
		fail(err.Error())
	}
	argv := []string{self, "escape-middle"}
	if unmarked {
		argv = append(argv, "unmarked")
	}
	// The middle reports the grandchild's PID on descriptor 3.
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2, w.Fd()}}
	pid, err := syscall.ForkExec(self, argv, attr)
	if err != nil {
		fail(err.Error())
	}
	w.Close()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		fail(fmt.Sprintf("middle process: %v %v", err, ws))
	}
	var gpid int
	if _, err := fmt.Fscan(r, &gpid); err != nil {
		fail("middle process: " + err.Error())
	}
	return gpid
}

// startEscapee starts testchild hold in a session of its own with stdout
// and stderr inherited, writes its PID on descriptor 3 and returns.
func startEscapee(unmarked bool) {
	self, err := os.Executable()
	if err != nil {
		fail(err.Error())
	}
	null, err := syscall.Open(os.DevNull, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		fail(err.Error())
	}
	env := os.Environ()
	if unmarked {
		env = []string{}
	}
	attr := &syscall.ProcAttr{Env: env, Files: []uintptr{uintptr(null), 1, 2}, Sys: &syscall.SysProcAttr{Setsid: true}}
	pid, err := syscall.ForkExec(self, []string{self, "hold"}, attr)
	if err != nil {
		fail(err.Error())
	}
	fmt.Fprintln(os.NewFile(3, "pid report"), pid)
}

// openFDs lists the open descriptors, comma separated, less the
// listing's own and the Go runtime's: its poller (anonymous inodes: epoll,
// eventfd) and the cgroup CPU limit files it keeps open for GOMAXPROCS.
func openFDs() string {
	dir := "/proc/self/fd"
	des, err := os.ReadDir(dir)
	if err != nil {
		fail(err.Error())
	}
	self := fmt.Sprintf("/proc/%d/fd", os.Getpid())
	var fds []int
	for _, de := range des {
		target, err := os.Readlink(dir + "/" + de.Name())
		if err != nil || target == self || strings.HasPrefix(target, "anon_inode:") ||
			strings.HasPrefix(target, "/sys/fs/cgroup/") {
			continue
		}
		if fd, err := strconv.Atoi(de.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	var s []string
	for _, fd := range fds {
		s = append(s, strconv.Itoa(fd))
	}
	return strings.Join(s, ",")
}

// nonblockingStdio lists those of 0, 1 and 2 in nonblocking mode.
func nonblockingStdio() string {
	var nb []string
	for fd := 0; fd <= 2; fd++ {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			fail(err.Error())
		}
		if flags&unix.O_NONBLOCK != 0 {
			nb = append(nb, strconv.Itoa(fd))
		}
	}
	if len(nb) == 0 {
		return "-"
	}
	return strings.Join(nb, ",")
}

// procStatus returns the value of field in /proc/self/status.
func procStatus(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail(err.Error())
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	fail("no " + field + " in /proc/self/status")
	return ""
}

func block() {
	for {
		time.Sleep(time.Hour)
	}
}
