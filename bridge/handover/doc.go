// Package handover takes over connections that a web server already
// accepted: a small program run as a CGI (boa's nph- CGIs get the client's
// socket; lighttpd's upgrade CGIs get two pipes it relays) passes them to
// the daemon over a unix socket with SCM_RIGHTS, together with the CGI
// variables the web server parsed, and exits. The daemon answers the
// request itself and keeps the connection.
//
// The protocol, version 1: the sender connects to the daemon's
// SOCK_SEQPACKET socket and sends one message whose rights carry one
// descriptor (a connected stream socket, both directions) or two (a read
// end, then a write end), and whose bytes are Magic, a NUL, then
// NUL-terminated NAME=VALUE strings: the variables of Carried, each only
// when set, at most MaxMessage bytes in all. The daemon answers one
// message, "OK" once it owns the descriptors and the message decoded, or
// "ERR " and a reason, and closes. A sender that cannot reach the daemon,
// or has no answer in time, answers 503 on the connection itself.
//
// Decode turns the variables into an HTTP/1.1 request head, which the
// daemon parses as it would one read from its own listener: the target is
// PATH_INFO and QUERY_STRING, so an endpoint has the same path wherever
// the web server mounts the CGI.
//
// The Listener checks each sender's credentials (SO_PEERCRED) before it
// keeps anything it was sent, and yields handed-over connections as a
// net.Listener would. Send is the sender's side.
//
// It imports only bridge/unixsock, which makes its socket.
package handover
