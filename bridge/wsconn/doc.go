// Package wsconn is the server side of an upgraded WebSocket connection
// (RFC 6455): Conn reads client frames into a pooled buffer, unmasks them
// in place and hands their payloads on as message pieces without ever
// assembling a message; it answers pings without waiting for a writer,
// pings a silent client, runs the closing handshake, and writes frames
// with writev. It is the WebSocket transport.Client, and the
// transport.Framed the shared mode writes through. Its reader parks
// between frames (see poll), so an idle connection holds no goroutine and
// no buffer.
//
// The upgrade itself is bridge/http1's: a Conn starts after it.
package wsconn
