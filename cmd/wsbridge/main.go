// Command wsbridge turns a program that speaks stdin/stdout into a
// WebSocket endpoint. It parses flags, sets up signals and calls run; only
// main exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/wsbridge/wsbridge/bridge"
	"github.com/wsbridge/wsbridge/procs"
)

// version is stamped by the build: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	c, err := parseFlags(os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "wsbridge:", err)
		os.Exit(2)
	case c.version:
		fmt.Println("wsbridge", version)
		os.Exit(0)
	}

	if os.Getenv("GOGC") == "" {
		// Boards have less memory than CPU to spare: collect garbage
		// at 50% growth, not 100%. The hot paths allocate nothing, so
		// this costs CPU only when connections come and go.
		debug.SetGCPercent(50)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		slog.Info("shutting down: closing connections and ending programs (signal again to exit at once)", "signal", sig.String())
		cancel()
		sig = <-sigs
		slog.Error("second signal: killing every program and exiting at once", "signal", sig.String())
		procs.KillAll() // their own process groups would outlive us
		os.Exit(1)
	}()

	if err := run(ctx, c, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wsbridge:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down cleanly.
func run(ctx context.Context, c config, logOut io.Writer) error {
	level, err := bridge.ParseLevel(c.logLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level, ReplaceAttr: levelNames}))
	slog.SetDefault(log)
	c.bridge.Logger = log
	c.bridge.ServerSoftware = "wsbridge/" + version

	if err := procs.ReapOrphans(); err != nil {
		log.Warn("cannot become a subreaper; orphaned grandchildren are left to init", "err", err)
	}
	srv, err := bridge.New(c.bridge)
	if err != nil {
		return err
	}
	addrs := c.addresses
	if len(addrs) == 0 {
		addrs = []string{""}
	}
	var listeners []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", net.JoinHostPort(strings.Trim(a, "[]"), strconv.Itoa(c.port)))
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
		log.Info("listening", "url", "http://"+l.Addr().String()+"/")
	}
	for _, ep := range c.bridge.Endpoints {
		path := ep.Path
		if path == "" {
			path = "(every path)"
		}
		if ep.ScriptDir != "" {
			log.Info("endpoint", "path", path, "dir", ep.ScriptDir)
		} else {
			log.Info("endpoint", "path", path, "command", strings.Join(ep.Command, " "))
		}
	}
	return srv.Serve(ctx, listeners...)
}

// levelNames prints websocketd's level names for the levels slog lacks.
func levelNames(_ []string, a slog.Attr) slog.Attr {
	if a.Key != slog.LevelKey {
		return a
	}
	switch a.Value.Any().(slog.Level) {
	case bridge.LevelDebug:
		a.Value = slog.StringValue("DEBUG")
	case bridge.LevelTrace:
		a.Value = slog.StringValue("TRACE")
	case bridge.LevelAccess:
		a.Value = slog.StringValue("ACCESS")
	case bridge.LevelFatal:
		a.Value = slog.StringValue("FATAL")
	}
	return a
}
