// Package bridge turns client connections into sessions with child
// processes. A Server accepts connections, reads each request head itself
// and parses it once (bridge/http1), and dispatches it (dispatch.go): a
// WebSocket upgrade (upgrade.go) becomes a bridge/wsconn connection and
// goes to its endpoint's mode (clients.go); any other request gets a page
// (bridge/pages) or a short answer, on the same port, without net/http's
// server.
//
// Each Endpoint is a program at a URL path (routes.go), or a directory
// whose executable files are each an endpoint (scriptdir.go, looked up per
// request through an os.Root so no path leaves the directory), served in
// one of three modes: a child per connection (modes/process), one shared
// child for every connection (modes/shared), or a run per message
// (modes/cgi). A mode talks to its client only through transport.Client,
// so a client of another transport joins the same way (ServeClient).
//
// Nothing queues in between: a slow reader on one side stops the pump
// that feeds it. Buffers are held only while data moves and idle readers
// park in one epoll set (bridge/poll), so an idle session holds no
// goroutine and no buffer.
package bridge
