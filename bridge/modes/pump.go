package modes

import (
	"errors"
	"syscall"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// Pump is a mode's input pump: it reads its client and hands the pieces
// to deliver, on a goroutine while data moves; while the client is idle
// it parks the client's descriptor in the Host's poller and returns, and
// a new goroutine picks up when the client is readable again, so an idle
// client holds no goroutine. Once the client side has ended, end runs
// with how Receive ended. Every mode starts its clients' input this way.
type Pump struct {
	host    *Host
	c       transport.Client
	rc      syscall.RawConn // nil: never parks
	deliver func([]framing.Piece) error
	end     func(error)
	resume  func() // Run, made once: a park allocates nothing
}

// NewPump readies the input pump of c and begins the client (see
// transport.Client.Begin). Start it with go p.Run().
func (h *Host) NewPump(c transport.Client, deliver func([]framing.Piece) error, end func(error)) *Pump {
	p := &Pump{host: h, c: c, deliver: deliver, end: end}
	p.resume = p.Run
	if h.Poller != nil {
		p.rc = c.Descriptor()
	}
	c.Begin(p.rc != nil, p.Wake)
	return p
}

// Run runs one turn of the pump: until the client side ends (then end
// runs) or the client idles and is parked.
func (p *Pump) Run() {
	err := p.receive()
	if errors.Is(err, transport.ErrParked) {
		return
	}
	if p.rc != nil {
		p.host.Poller.Forget(p.rc)
	}
	p.end(err)
}

func (p *Pump) receive() error {
	for {
		err := p.c.Receive(p.deliver)
		if !errors.Is(err, transport.ErrParked) {
			return err
		}
		if p.host.Poller.Park(p.rc, p.resume) != nil {
			// Cannot park (out of epoll watches, say): wait in the
			// read from now on, as the output pump does.
			p.c.Begin(false, p.Wake)
			continue
		}
		// A close or late ping that came while parking found nothing
		// to wake: look again now.
		if p.c.Closing() && p.host.Poller.Unpark(p.rc) {
			continue
		}
		return transport.ErrParked
	}
}

// Wake runs a parked pump now, for a close or a late ping that it must
// see even though the client sends nothing.
func (p *Pump) Wake() {
	if p.rc != nil && p.host.Poller.Unpark(p.rc) {
		go p.Run()
	}
}
