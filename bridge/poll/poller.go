package poll

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller parks idle readers. A session direction with nothing to read
// would otherwise keep a goroutine blocked in a read, and its stack, for
// as long as the connection idles; instead the reader parks its
// descriptor here and returns. One goroutine waits on an epoll set for
// every parked descriptor and starts a reader again when its descriptor
// turns readable (or hangs up). This is the netpoll style gobwas/ws was
// built for: an idle connection costs its kernel objects and a few small
// structs.
//
// Descriptors are registered one-shot: after an event a descriptor is
// silent until parked again, so each park gets at most one resume. The
// owner must call Forget before it closes a parked descriptor.
type Poller struct {
	epfd int
	wake int // eventfd that stops the loop

	// Indexed by descriptor: descriptors are small and dense, and a
	// slot costs an idle session less than a map entry.
	mu     sync.Mutex
	parked []func() // what resumes the reader parked on a descriptor, or nil
	known  []bool   // the descriptor is in the epoll set
	done   chan struct{}
}

// NewPoller starts a Poller's goroutine; Close stops it.
func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	p := &Poller{epfd: epfd, wake: wake, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Park arranges for resume to run on a new goroutine once rc's descriptor
// is readable or hung up. It fails only if the descriptor cannot be
// watched (it is closed): the caller then goes on reading itself.
func (p *Poller) Park(rc syscall.RawConn, resume func()) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
		p.grow(int(fd))
		op := unix.EPOLL_CTL_MOD
		if !p.known[fd] {
			op = unix.EPOLL_CTL_ADD
		}
		if err = unix.EpollCtl(p.epfd, op, int(fd), &ev); err == nil {
			p.known[fd] = true
			p.parked[fd] = resume
		}
	})
	return errors.Join(cerr, err)
}

// Unpark takes rc's descriptor out of the parked set and reports whether
// it was parked: if so, its resume will not run, and the caller resumes
// the reader itself.
func (p *Poller) Unpark(rc syscall.RawConn) bool {
	was := false
	_ = rc.Control(func(fd uintptr) {
		p.mu.Lock()
		if int(fd) < len(p.parked) {
			was = p.parked[fd] != nil
			p.parked[fd] = nil
		}
		p.mu.Unlock()
	})
	return was
}

// Forget removes rc's descriptor from the epoll set; call it before the
// descriptor is closed, once its reader is done for good.
func (p *Poller) Forget(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		p.mu.Lock()
		if int(fd) < len(p.known) {
			if p.known[fd] {
				_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
			}
			p.known[fd] = false
			p.parked[fd] = nil
		}
		p.mu.Unlock()
	})
}

// grow makes room for descriptor fd in the tables; p.mu is held.
func (p *Poller) grow(fd int) {
	if fd < len(p.parked) {
		return
	}
	n := max(2*len(p.parked), fd+1, 64)
	p.parked = append(p.parked, make([]func(), n-len(p.parked))...)
	p.known = append(p.known, make([]bool, n-len(p.known))...)
}

func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == p.wake {
				return
			}
			p.mu.Lock()
			var resume func()
			if int(ev.Fd) < len(p.parked) {
				resume = p.parked[ev.Fd]
				p.parked[ev.Fd] = nil
			}
			p.mu.Unlock()
			if resume != nil {
				go resume()
			}
		}
	}
}

// Close stops the loop; parked readers are not resumed.
func (p *Poller) Close() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.wake, one[:])
	<-p.done
	unix.Close(p.epfd)
	unix.Close(p.wake)
}
