// Package shared is the shared mode (--shared): one long-lived child for
// every client of an endpoint, websocketd users' oldest wish. Its Hub
// (hub.go) starts, supervises and restarts the child (supervise.go),
// frames each batch of its output once and routes it to every member or,
// with the mux framing, to the member a record names (route.go), at the
// pace of the fastest members (pace.go). Each member (member.go) queues
// the framed blobs (blob.go) and writes them through its client's
// transport.Framed without ever blocking the fan-out (queue.go); a member
// that cannot keep up is cut with 1013 or loses whole messages.
package shared
