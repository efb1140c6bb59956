package bridge_test

import (
	"context"
	"log"
	"net"
	"os/signal"
	"syscall"

	"github.com/wsbridge/wsbridge/bridge"
)

// A program embedding the bridge: every WebSocket connection to
// 127.0.0.1:8080 runs its own `cat`, with messages as len32 records, until
// SIGTERM closes every session with 1001 and ends every child.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv, err := bridge.New(bridge.Options{
		Endpoints: []bridge.Endpoint{{
			Command: []string{"cat"},
			Framing: "len32",
			PassEnv: []string{"PATH"},
		}},
		Origins: []string{"*"},
	})
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Serve(ctx, l); err != nil {
		log.Fatal(err)
	}
}
