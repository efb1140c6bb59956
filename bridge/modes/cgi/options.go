package cgi

import "time"

// Options tune per-message CGI. The zero value of each field is a sound
// default, noted beside it, which the server fills in before Serve.
type Options struct {
	PerConn int           // scripts running at once for one connection; 0: 4
	Total   int           // scripts running at once for the endpoint; 0: 64
	Timeout time.Duration // a script running longer is killed; 0: 30s
	MaxOut  int64         // largest reply (stdout) of a script; 0: 1 MiB
}
