// Package process is the per-connection mode (websocketd's way, and the
// default): each client gets a child of its own for the connection's
// life. A session runs two pumps, one per direction, and no goroutine of
// its own. The input pump (input.go) writes the client's messages to the
// child's stdin, holding back the start of an unfinished one; the output
// pump (output.go) cuts the child's stdout into messages and sends them.
// Neither queues: a slow side stops the pump that feeds it. When both are
// done, the child's exit becomes the client's close (transport.ChildExited).
package process
