// Package bridge turns WebSocket connections into sessions with child
// processes. A Server accepts connections, reads each request head itself,
// upgrades WebSocket requests on the raw connection with gobwas/ws (no
// net/http on that path), and hands other requests to a net/http server on
// the same port. Each session runs two pumps: the input pump reads frames
// into a pooled buffer, unmasks them in place and writes their payloads to
// the child's stdin with writev; the output pump reads the child's stdout,
// splits it with a framing.Decoder and writes frames with writev. The two
// directions never wait for each other, and neither queues: a slow reader
// on one side stops the pump that feeds it. Buffers are held only while
// data moves, so an idle session holds none, but for the start of an
// unfinished client message (up to 64 KiB), which is written to the
// child only once the message is whole.
//
// Each Endpoint is a program at a URL path, or a directory whose
// executable files are each an endpoint (ScriptDir, looked up per request
// through an os.Root so no path leaves the directory). Plain HTTP requests
// get the demo page, files of Options.StaticDir (also through an os.Root),
// or the console page of an endpoint (Options.DevConsole).
//
// The client side of a session is the Client interface, so a fallback
// transport can feed a child exactly as a WebSocket does.
package bridge
