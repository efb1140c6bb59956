package modes

import (
	"errors"
	"syscall"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// Pump is a mode's input pump: it reads its client and hands the pieces
// to its Input, on a goroutine while data moves; while the client is idle
// it parks the client's descriptor in the Host's poller and returns, and
// a new goroutine picks up when the client is readable again, so an idle
// client holds no goroutine. Once the client side has ended, the Input's
// EndIn runs with how Receive ended. Every mode starts its clients' input
// this way. A Pump lives in its mode's per-client struct, not on its own:
// an idle client of a shared child costs a couple of KiB, and every
// object counts.
type Pump struct {
	host *Host
	c    transport.Client
	rc   syscall.RawConn // nil: never parks
	in   Input
}

// Input is a mode's side of a client's input.
type Input interface {
	// DeliverIn takes each batch of pieces Receive reads (see
	// transport.Client.Receive).
	DeliverIn(pieces []framing.Piece) error
	// EndIn runs once, when the client side has ended, with how.
	EndIn(err error)
}

// InitPump readies p, the input pump of c feeding in, and begins the
// client (see transport.Client.Begin). Start it with go p.Run().
func (h *Host) InitPump(p *Pump, c transport.Client, in Input) {
	*p = Pump{host: h, c: c, in: in}
	if h.Poller != nil {
		p.rc = c.Descriptor()
	}
	c.Begin(p.rc != nil, p.Wake)
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
	p.in.EndIn(err)
}

func (p *Pump) receive() error {
	deliver := p.in.DeliverIn // made per turn, not kept: an idle client holds less
	for {
		err := p.c.Receive(deliver)
		if !errors.Is(err, transport.ErrParked) {
			return err
		}
		if p.host.Poller.Park(p.rc, p.Run) != nil {
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
