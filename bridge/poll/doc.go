// Package poll holds what lets an idle connection cost no goroutine and no
// buffer: the Poller, one epoll set where idle readers park their
// descriptors until they turn readable; the Reader, which reads a polled
// descriptor into a pooled buffer taken only once data is there; the
// buffer pool itself; and the raw-descriptor loops (read, writev, a read
// that never waits) that retry EINTR and report EAGAIN as ErrWouldBlock.
//
// It is a leaf: it imports nothing of the project.
//
// # Parking and connections without a descriptor of their own
//
// The Poller watches a descriptor; the Reader reads a Source. A bare TCP
// socket or a pipe is both: its descriptor is watched and read with
// read(2). A connection layered on another's descriptor (a TLS
// connection over TCP) parks on the descriptor under it, but must be read
// through its own Read, and may hold input it has already taken off the
// socket (the rest of a TLS record) while the descriptor shows nothing.
// Such a source implements Layered: Underlying gives the descriptor the
// Poller watches, and ReadNow reads what the source holds already,
// without waiting and without a system call (for a tls.Conn, a Read under
// a deadline already past, which crypto/tls treats as a temporary error:
// the runtime fails it before it reaches the socket), answering
// ErrWouldBlock when it holds nothing. The Reader waits on the
// descriptor with a 1-byte peek, holding no buffer, and then reads
// through the source. It parks only after ReadNow said ErrWouldBlock, so
// input the source holds is never left behind a parked descriptor, and it
// takes a buffer only for a read that has data. A layered connection is
// never written with writev on the descriptor (bridge/wsconn): that would
// go past the source's records.
package poll
