// Package transport is the seam between a mode (the per-connection
// process, the shared child, per-message CGI) and the client it serves:
// the Client interface every transport implements (the WebSocket
// connection of bridge/wsconn today; the in-memory one of the tests;
// Server-Sent Events and long polling next), the Framed interface the
// shared mode's fan-out writes through, and, in close.go, every decision
// that ends a client: which close code, which reason, which log line, for
// a child's exit, a decoder error, a protocol error, a slow client, a
// full assembly budget, shutdown and restart.
//
// It imports only framing: a transport and a mode both import it, never
// each other.
package transport
