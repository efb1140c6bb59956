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
	c.bridge.Command = fs.Args()
	if len(c.bridge.Command) == 0 {
		return c, errors.New("no program given: usage: wsbridge [flags] COMMAND [ARGS...] (see wsbridge --help)")
	}
	switch {
	case binary && framingName != "" && framingName != "raw":
		return c, fmt.Errorf("--binary means --framing=raw, but --framing=%s was given", framingName)
	case binary:
		framingName = "raw"
	}
	c.bridge.Framing = framingName
	for _, v := range strings.Split(passenv, ",") {
		if v = strings.TrimSpace(v); v != "" {
			c.bridge.PassEnv = append(c.bridge.PassEnv, v)
		}
	}
	c.bridge.Origins = origins
	c.bridge.SameOrigin = sameOrigin
	c.bridge.CloseGrace = time.Duration(closems) * time.Millisecond
	c.bridge.MaxMessage = int64(maxMessage)
	if maxMessage == 0 {
		c.bridge.MaxMessage = -1 // no limit
	}
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
  --framing=line|raw|len32    how messages travel on stdio (default line):
                              line: one message per line
                              raw: each stdout read is one binary message
                              len32: 4-byte length-prefixed records
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
  --version                 * print the version
  --help                    * print this help

Not yet supported websocketd flags (they fail with a clear error): --ssl,
--sslcert, --sslkey, --dir, --staticdir, --cgidir, --devconsole, --redirport,
--reverselookup.
`
