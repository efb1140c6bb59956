package stdio

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// PipeDefault is Linux's default pipe capacity: a read that fills it
// finds a stream.
const PipeDefault = 64 << 10

// bigPipe is the capacity a pipe that fills up is grown to.
const bigPipe = 1 << 20

// GrowPipe raises the capacity of a pipe that turned out to carry a
// stream (a write found it full, a read found it full) from Linux's 64 KiB
// to 1 MiB, so a stream moves in fewer, larger system calls and wake-ups.
// Only such pipes grow: the kernel caps pipe memory per user (64 MiB by
// default, /proc/sys/fs/pipe-user-pages-soft) and past it gives new pipes
// a single page, so idle sessions must not spend it. Failure is harmless.
func GrowPipe(fd uintptr) {
	_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, bigPipe)
}

// IsBrokenPipe reports whether err says the child no longer reads stdin.
func IsBrokenPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed)
}

// Queued returns the bytes f's pipe holds unread (TIOCINQ), or false when
// it cannot tell.
func Queued(f *os.File) (int64, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	n, ok := 0, false
	_ = rc.Control(func(fd uintptr) {
		if q, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ); err == nil {
			n, ok = q, true
		}
	})
	return int64(n), ok
}
