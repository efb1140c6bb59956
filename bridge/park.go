package bridge

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller parks idle readers. A session direction with nothing to read
// would otherwise keep a goroutine blocked in a read, and its stack, for as
// long as the connection idles; instead the reader parks its descriptor
// here and returns. One goroutine waits on an epoll set for every parked
// descriptor and starts a reader again when its descriptor turns readable
// (or hangs up). This is the netpoll style gobwas/ws was built for: an
// idle connection costs its kernel objects and a few small structs.
//
// Descriptors are registered one-shot: after an event a descriptor is
// silent until parked again, so each park gets at most one resume. The
// owner must call forget before it closes a parked descriptor.
type poller struct {
	epfd int
	wake int // eventfd that stops the loop

	mu     sync.Mutex
	parked map[int32]func() // descriptor → what resumes its reader
	known  map[int32]bool   // descriptors in the epoll set
	done   chan struct{}
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("bridge: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("bridge: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("bridge: epoll: %w", err)
	}
	p := &poller{epfd: epfd, wake: wake, parked: map[int32]func(){}, known: map[int32]bool{}, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Park arranges for resume to run on a new goroutine once rc's descriptor
// is readable or hung up. It fails only if the descriptor cannot be
// watched (it is closed): the caller then goes on reading itself.
func (p *poller) Park(rc syscall.RawConn, resume func()) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
		op := unix.EPOLL_CTL_MOD
		if !p.known[int32(fd)] {
			op = unix.EPOLL_CTL_ADD
		}
		if err = unix.EpollCtl(p.epfd, op, int(fd), &ev); err == nil {
			p.known[int32(fd)] = true
			p.parked[int32(fd)] = resume
		}
	})
	return errors.Join(cerr, err)
}

// Unpark takes rc's descriptor out of the parked set and reports whether
// it was parked: if so, its resume will not run, and the caller resumes
// the reader itself.
func (p *poller) Unpark(rc syscall.RawConn) bool {
	was := false
	_ = rc.Control(func(fd uintptr) {
		p.mu.Lock()
		_, was = p.parked[int32(fd)]
		delete(p.parked, int32(fd))
		p.mu.Unlock()
	})
	return was
}

// Forget removes rc's descriptor from the epoll set; call it before the
// descriptor is closed, once its reader is done for good.
func (p *poller) Forget(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		p.mu.Lock()
		if p.known[int32(fd)] {
			_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		}
		delete(p.known, int32(fd))
		delete(p.parked, int32(fd))
		p.mu.Unlock()
	})
}

func (p *poller) loop() {
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
			resume := p.parked[ev.Fd]
			delete(p.parked, ev.Fd)
			p.mu.Unlock()
			if resume != nil {
				go resume()
			}
		}
	}
}

// close stops the loop; parked readers are not resumed.
func (p *poller) close() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.wake, one[:])
	<-p.done
	unix.Close(p.epfd)
	unix.Close(p.wake)
}
