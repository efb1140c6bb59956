// Package tlsconn is the server side of a TLS connection that parks when
// idle like a plain one: Conn is a crypto/tls server connection over a
// TCP or unix socket that implements poll.Layered, so a reader with
// nothing to read waits on the socket under it, with no goroutine and
// no buffer, and reads through the TLS records once bytes come.
//
// crypto/tls keeps what it has taken off the socket (the rest of a
// record, a record already decrypted) inside the connection; ReadNow
// gives that out first, with a Read under a deadline already past, which
// crypto/tls treats as temporary and which fails before a system call,
// so the Reader never parks a connection that has input waiting in it.
//
// It imports bridge/poll for the Layered contract and nothing else of
// the project.
package tlsconn
