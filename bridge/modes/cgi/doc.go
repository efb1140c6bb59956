// Package cgi is the per-message CGI mode (--cgi-per-message): each
// message a client sends runs the program once, CGI/1.1 style, with the
// message on stdin; what it prints, after an optional CGI header block,
// is the reply (run.go). Scripts of one connection run concurrently, up to
// Options.PerConn, and Options.Total for the endpoint; their replies go
// out in the order of the messages (conn.go). While a connection's slots
// are all busy its input pump waits: the client is not read.
package cgi
