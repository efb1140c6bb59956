// Package memconn is an in-memory transport: a transport.Client (and a
// transport.Framed) whose other end is a Peer in the same process, with
// no socket, no descriptor and its own wire format. The bridge's tests
// drive every mode through it and through a real WebSocket alike, which
// proves the modes talk to their clients only through the transport
// seam. It never parks (it has no descriptor), so it also covers the
// poller-less path.
package memconn
