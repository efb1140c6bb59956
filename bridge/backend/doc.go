// Package backend forwards the plain HTTP requests of a bridge's port to
// a web server behind it (--http-backend): a board's BusyBox httpd, boa
// or thttpd keeps serving its pages and CGIs, while WebSocket upgrades
// stay with the bridge, on the same port.
//
// A Forwarder is its own streaming HTTP/1.1 client, not net/http's (the
// bridge links neither net/http's server nor its client: see
// bridge/pages/writer.go). Each request goes out with its hop-by-hop
// fields dropped and X-Forwarded-For, -Proto and -Host set; a chunked
// request body is buffered and sent with a Content-Length, since small
// servers take no other. Each response is relayed as it arrives, every
// read written at once, so a long-polling CGI's bytes reach the client
// without waiting. A backend that refuses gets the client 502, one that
// stays silent 504.
//
// It imports bridge/http1 only.
package backend
