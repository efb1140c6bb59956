package main

// What the benchmark reads about processes: a server's CPU time, memory,
// threads and children from /proc, and its own CPU time from getrusage.

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is the unit of utime and stime in /proc/PID/stat, what C's
// sysconf(_SC_CLK_TCK) returns: the kernel hands it to every process in
// the auxiliary vector (AT_CLKTCK). It is 100 on every Linux in practice.
var clockTicks = func() int64 {
	const atClkTck = 17 // AT_CLKTCK in <elf.h>
	if auxv, err := unix.Auxv(); err == nil {
		for _, kv := range auxv {
			if kv[0] == atClkTck && kv[1] > 0 {
				return int64(kv[1])
			}
		}
	}
	return 100
}()

// procCPU returns the CPU time (user + system) a process has used, its own
// threads only: children are counted in fields the benchmark ignores.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f, err := statFields(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	// After the command name: state(3) ppid(4) ... utime(14) stime(15).
	ut, err1 := strconv.ParseInt(string(f[14-3]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[15-3]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime or stime", pid)
	}
	return time.Duration(ut+st) * time.Second / time.Duration(clockTicks), nil
}

// statFields splits /proc/PID/stat after the command name, which may hold
// spaces and parentheses: field 3 (state) comes first.
func statFields(b []byte) ([][]byte, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("no command name")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 15-2 {
		return nil, fmt.Errorf("%d fields", len(f)+2)
	}
	return f, nil
}

// procStatus returns a numeric field of /proc/PID/status, such as VmRSS
// (in KiB) or Threads.
func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(name) != key {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}

// rssKiB returns a process's resident memory, its children not included.
func rssKiB(pid int) (int64, error) { return procStatus(pid, "VmRSS") }

// threads returns how many threads a process has.
func threads(pid int) (int64, error) { return procStatus(pid, "Threads") }

// children counts the processes whose parent is pid (the servers' cat
// children), by scanning /proc: this kernel has no /proc/PID/task/*/children.
func children(pid int) int {
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	n := 0
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		if f, err := statFields(b); err == nil {
			if ppid, err := strconv.Atoi(string(f[1])); err == nil && ppid == pid {
				n++
			}
		}
	}
	return n
}

// selfCPU returns the CPU time (user + system) the benchmark itself has
// used, all its threads: during a measurement that is the load generator.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit lifts the soft limit on open files to the hard limit, so
// the idle test can hold its connections. Children inherit it: an explicit
// Setrlimit stops os/exec restoring the limit the process started with.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// procWrites returns how many write system calls (write, writev and
// their kin: /proc/PID/io's syscw, all threads) a process has made.
func procWrites(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no syscw in /proc/%d/io", pid)
}
