// Package modes holds what the three ways of serving a client share: the
// Host a mode runs in (the server's logger, poller, fork count and
// shutdown registry), the Program it runs, the input Pump that reads a
// client and parks it while idle, and the Assembler that keeps messages
// whole under an endpoint's Budget. The modes themselves are its
// sub-packages: process (one child per connection), shared (one child for
// every connection, with the mux framing to address them) and cgi (one
// run per message). Each talks to its clients only through
// transport.Client (and transport.Framed for shared).
package modes
