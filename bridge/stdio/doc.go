// Package stdio is the child's side of a session: the Writer that frames
// message pieces onto a child's stdin with writev, blocking while the
// child does not read (the backpressure that stops the bridge reading the
// client), and the Cutter that cuts what a child writes on stdout into
// message pieces with a framing.Decoder. Every mode uses both.
package stdio
