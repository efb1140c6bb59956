//go:build wsbridge_minimal

package main

import (
	"context"
	"log/slog"

	"github.com/wsbridge/wsbridge/bridge"
)

// tlsInBuild says whether this build serves TLS.
const tlsInBuild = false

// load refuses --ssl: the minimal build has no TLS (see bridge.ErrNoTLS).
func (t *tlsFlags) load(*config) error {
	return badFlag("ssl", "--ssl: %v", bridge.ErrNoTLS)
}

func watchCerts(context.Context, config, *slog.Logger) {}
