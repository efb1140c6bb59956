// Package wstest is a WebSocket client for tests and the benchmark tool,
// over a real TCP connection, able to send what a broken or hostile client
// sends: any frame header, no mask, a half request, odd headers, writes cut
// anywhere. It reads frames exactly as the server wrote them, and has an
// allocation-free path (prebuilt frames, headers parsed in place, payloads
// skipped) so that a load generator costs far less than the server it
// measures.
//
// It is not a production client. It imports no other package of this
// project, and frames and parses on its own rather than with the library
// the server uses, so that a bug in one is not hidden by the same bug in
// the other.
package wstest
