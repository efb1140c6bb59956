// Package examples holds child programs to copy: small programs in Go, C
// and sh that speak wsbridge's line and len32 framings on stdin/stdout (see
// README.md). The package itself has no code; its tests build each example,
// drive it over pipes as wsbridge would, then run it behind the real
// wsbridge binary and talk to it with a minimal WebSocket client.
package examples
