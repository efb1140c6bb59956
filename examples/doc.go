// Package examples holds child programs to copy: small programs in Go, C
// and sh that speak wsbridge's framings (line, raw, len32, mux) on
// stdin/stdout, and a CGI script (see README.md). The package itself has
// no code; its tests build each example and drive it over pipes as
// wsbridge would, playing the bridge's side of each framing with package
// framing's codecs, then run those of the line, len32 and raw framings
// behind the real wsbridge binary and talk to them with a minimal
// WebSocket client.
package examples
