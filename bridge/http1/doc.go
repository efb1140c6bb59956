// Package http1 reads HTTP/1.x requests off a raw connection and writes
// the few answers the bridge gives itself. ReadHead reads a request head
// into the caller's buffer; Parse parses it, once, into a Request: the
// request line, the target's path and query, the header fields in order,
// and the fields an upgrade needs, with the Peer it came from. Routing,
// the origin and host checks, a child's environment, the WebSocket
// upgrade (Upgrade, which answers 101 or says why not) and the plain-HTTP
// answers all read that value. Text and Reject write short answers that
// close the connection; LingerClose closes it so the answer survives.
// ParseResponse parses the response head of a web server the bridge
// forwards to (--http-backend), strictly on what frames the body.
//
// It is a leaf: it imports nothing of the project.
package http1
