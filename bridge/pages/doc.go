// Package pages answers the requests that are not WebSocket upgrades:
// the embedded demo page, the files of a static directory, an endpoint's
// console page, and otherwise a 426 that says what the path is for or a
// 404. Its Site serves net/http handlers on the bridge's own connection
// (writer.go), without net/http's server. The wsbridge_minimal build
// leaves the pages out and answers with fixed texts (minimal.go).
//
// It imports bridge/http1 only.
package pages
