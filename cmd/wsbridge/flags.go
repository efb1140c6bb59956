package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wsbridge/wsbridge/bridge"
)

// config is everything the command line says.
type config struct {
	addresses []string
	port      int
	logLevel  string
	version   bool
	bridge    bridge.Options
}

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// sizeFlag is a byte count: 1048576, 64KiB, 1MiB, 1M.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	*s = sizeFlag(n)
	return err
}

func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"k", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size in bytes (e.g. 1048576, 64KiB, 1MiB)", v)
	}
	return n * mult, nil
}

// sharedFlag is --shared (start the child with the daemon) or
// --shared=lazy (at the first connection).
type sharedFlag string

func (s *sharedFlag) String() string   { return string(*s) }
func (s *sharedFlag) IsBoolFlag() bool { return true }
func (s *sharedFlag) Set(v string) error {
	switch v {
	case "true", "eager":
		*s = "eager"
	case "lazy":
		*s = "lazy"
	case "false":
		*s = ""
	default:
		return fmt.Errorf("want --shared or --shared=lazy")
	}
	return nil
}

// notYet marks websocketd flags this version does not implement: they are
// accepted by the parser so the error can say so plainly.
var notYet = []string{"ssl", "sslcert", "sslkey", "dir", "staticdir", "cgidir", "devconsole", "redirport", "reverselookup"}

// parseFlags reads the command line into a config. It returns flag.ErrHelp
// after printing help to out for --help.
func parseFlags(args []string, out io.Writer) (config, error) {
	var (
		c                         config
		headers, headersWS, hHTTP listFlag
		addresses, origins        listFlag
		passenv                   string
		binary                    bool
		closems                   uint
		maxMessage                = sizeFlag(1 << 20)
		framingName               string
		sameOrigin                bool
		ep                        bridge.Endpoint
		shared                    sharedFlag
		restart                   string
		queue                     = sizeFlag(256 << 10)
		cgiOut                    = sizeFlag(1 << 20)
		cgiMode                   bool
	)
	fs := flag.NewFlagSet("wsbridge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&c.port, "port", 8080, "")
	fs.Var(&addresses, "address", "")
	fs.BoolVar(&binary, "binary", false, "")
	fs.StringVar(&passenv, "passenv", "PATH,LD_LIBRARY_PATH", "")
	fs.Var(&origins, "origin", "")
	fs.BoolVar(&sameOrigin, "sameorigin", false, "")
	fs.IntVar(&c.bridge.MaxForks, "maxforks", 0, "")
	fs.UintVar(&closems, "closems", 0, "")
	fs.StringVar(&c.logLevel, "loglevel", "access", "")
	fs.Var(&headers, "header", "")
	fs.Var(&headersWS, "header-ws", "")
	fs.Var(&hHTTP, "header-http", "")
	fs.BoolVar(&c.version, "version", false, "")
	fs.StringVar(&framingName, "framing", "", "")
	fs.Var(&maxMessage, "max-message", "")
	fs.DurationVar(&c.bridge.PingInterval, "ping-interval", 0, "")
	fs.DurationVar(&c.bridge.PingTimeout, "ping-timeout", 10*time.Second, "")
	fs.DurationVar(&c.bridge.HandshakeTimeout, "handshake-timeout", 10*time.Second, "")
	fs.IntVar(&c.bridge.MaxConns, "max-conns", 0, "")
	fs.BoolVar(&c.bridge.Demo, "demo", false, "")
	fs.Var(&shared, "shared", "")
	fs.StringVar(&restart, "on-restart", "close", "")
	fs.Var(&queue, "queue", "")
	fs.BoolVar(&ep.Shared.DropSlow, "drop-slow", false, "")
	fs.BoolVar(&cgiMode, "cgi-per-message", false, "")
	fs.IntVar(&ep.CGI.PerConn, "cgi-per-conn", 4, "")
	fs.IntVar(&ep.CGI.Total, "cgi-total", 64, "")
	fs.DurationVar(&ep.CGI.Timeout, "cgi-timeout", 30*time.Second, "")
	fs.Var(&cgiOut, "cgi-max-output", "")
	unsupported := map[string]*string{}
	for _, name := range notYet {
		unsupported[name] = fs.String(name, "", "")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, usage)
			return c, err
		}
		return c, fmt.Errorf("%v (see wsbridge --help)", err)
	}
	var setNotYet []string
	fs.Visit(func(f *flag.Flag) {
		if _, ok := unsupported[f.Name]; ok {
			setNotYet = append(setNotYet, "--"+f.Name)
		}
	})
	if len(setNotYet) > 0 {
		return c, fmt.Errorf("%s: websocketd flag not supported by this version of wsbridge yet", strings.Join(setNotYet, ", "))
	}
	if c.version {
		return c, nil
	}

	c.addresses = addresses
	if c.port < 0 || c.port > 65535 {
		return c, fmt.Errorf("--port=%d: want 0 to 65535", c.port)
	}
	ep.Command = fs.Args()
	if len(ep.Command) == 0 {
		return c, errors.New("no program given: usage: wsbridge [flags] COMMAND [ARGS...] (see wsbridge --help)")
	}
	switch {
	case binary && framingName != "" && framingName != "raw":
		return c, fmt.Errorf("--binary means --framing=raw, but --framing=%s was given", framingName)
	case binary:
		framingName = "raw"
	}
	ep.Framing = framingName
	for _, v := range strings.Split(passenv, ",") {
		if v = strings.TrimSpace(v); v != "" {
			ep.PassEnv = append(ep.PassEnv, v)
		}
	}
	c.bridge.Origins = origins
	c.bridge.SameOrigin = sameOrigin
	ep.CloseGrace = time.Duration(closems) * time.Millisecond
	ep.MaxMessage = int64(maxMessage)
	if maxMessage == 0 {
		ep.MaxMessage = -1 // no limit
	}
	switch {
	case shared != "" && cgiMode:
		return c, errors.New("--shared and --cgi-per-message are two different modes: choose one")
	case shared != "":
		ep.Mode = bridge.ModeShared
		ep.Shared.Lazy = shared == "lazy"
	case cgiMode:
		ep.Mode = bridge.ModeCGI
	}
	switch restart {
	case "close":
	case "keep":
		ep.Shared.KeepClients = true
	default:
		return c, fmt.Errorf("--on-restart=%s: want close or keep", restart)
	}
	if queue < 512 {
		return c, fmt.Errorf("--queue=%d: want at least 512 bytes", queue)
	}
	ep.Shared.Queue = int(min(queue, 1<<30))
	ep.CGI.MaxOut = int64(cgiOut)
	if ep.CGI.PerConn < 1 || ep.CGI.Total < 1 || ep.CGI.Timeout <= 0 || cgiOut < 1 {
		return c, errors.New("--cgi-per-conn, --cgi-total, --cgi-timeout and --cgi-max-output must be > 0")
	}
	c.bridge.Endpoints = []bridge.Endpoint{ep}
	if c.bridge.PingInterval < 0 || c.bridge.PingTimeout <= 0 || c.bridge.HandshakeTimeout <= 0 {
		return c, errors.New("--ping-interval must be ≥ 0, --ping-timeout and --handshake-timeout > 0")
	}
	var err error
	for _, h := range []struct {
		list listFlag
		dst  *http.Header
		name string
	}{{headers, &c.bridge.Header, "--header"}, {headersWS, &c.bridge.HeaderWS, "--header-ws"}, {hHTTP, &c.bridge.HeaderHTTP, "--header-http"}} {
		for _, v := range h.list {
			name, value, perr := bridge.ParseHeader(v)
			if perr != nil {
				return c, fmt.Errorf("%s: %w", h.name, perr)
			}
			if *h.dst == nil {
				*h.dst = http.Header{}
			}
			h.dst.Add(name, value)
		}
	}
	if _, err = bridge.ParseLevel(c.logLevel); err != nil {
		return c, fmt.Errorf("--loglevel: %w", err)
	}
	return c, nil
}

const usage = `wsbridge: turn a program that speaks stdin/stdout into a WebSocket endpoint.

Usage:
  wsbridge [flags] COMMAND [ARGS...]

Each WebSocket connection runs COMMAND; messages from the client go to its
stdin, what it writes on stdout comes back as messages.

Flags marked * mean what they mean in websocketd.

  --port=PORT               * TCP port to listen on (default 8080)
  --address=ADDR            * address to bind, repeatable (default: all)
  --framing=NAME              how messages travel on stdio (default line):
                              line: one message per line
                              raw: each stdout read is one binary message
                              len32: 4-byte length-prefixed records
                              mux: len32 with a connection id (--shared only)
  --binary                  * same as --framing=raw
  --max-message=SIZE          largest message a client may send (default 1MiB; 0: no limit)
  --passenv=VAR,...         * daemon variables the program inherits
                              (default PATH,LD_LIBRARY_PATH); nothing else leaks
  --origin=HOST[:PORT],...  * browser pages allowed to connect; '*' allows any
  --sameorigin              * allow pages served from the same host and port
                              (also the default when --origin is not given)
  --maxforks=N              * programs running at once (0: no limit); over it: 429
  --max-conns=N               connections open at once (0: no limit); over it: 503
  --closems=MS              * stretch each wait before signalling the program
  --ping-interval=DUR         ping a silent client after DUR (default 0: never)
  --ping-timeout=DUR          drop a client whose ping goes unanswered (default 10s)
  --handshake-timeout=DUR     the request must arrive within DUR (default 10s)
  --header='N: V'           * add a header to every response, repeatable
  --header-ws='N: V'        * ... to successful WebSocket upgrades only
  --header-http='N: V'      * ... to every response but upgrades
  --loglevel=LEVEL          * debug, trace, access (default), info, error, fatal
  --demo                      serve a demo page at / that talks to COMMAND

Shared process: one COMMAND for every client
  --shared[=lazy]             start COMMAND with the daemon (lazy: at the first
                              connection) and keep it running; it is restarted
                              with backoff when it exits. Everything it writes
                              goes to every client; each client message goes to
                              its stdin whole. With --framing=mux, records carry
                              a connection id: see "mux" in the README.
  --on-restart=close|keep     while COMMAND restarts, close clients with 1012
                              (close, default) or keep them connected (keep)
  --queue=SIZE                bytes waiting for one client before it counts as
                              slow (default 256KiB)
  --drop-slow                 a slow client loses whole messages instead of
                              being disconnected with 1013

Per-message CGI: COMMAND runs once per message, CGI/1.1 style
  --cgi-per-message           message on stdin (REQUEST_METHOD=POST,
                              CONTENT_LENGTH); stdout, after an optional CGI
                              header block, is the reply
  --cgi-per-conn=N            scripts running at once per connection (default 4)
  --cgi-total=N               ... for all connections (default 64)
  --cgi-timeout=DUR           kill a script running longer (default 30s)
  --cgi-max-output=SIZE       largest reply (default 1MiB)

  --version                 * print the version
  --help                    * print this help

Not yet supported websocketd flags (they fail with a clear error): --ssl,
--sslcert, --sslkey, --dir, --staticdir, --cgidir, --devconsole, --redirport,
--reverselookup.
`
