package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsbridge/wsbridge/bridge"
	"github.com/wsbridge/wsbridge/bridge/backend"
	"github.com/wsbridge/wsbridge/bridge/certs"
	"github.com/wsbridge/wsbridge/bridge/unixsock"
	"github.com/wsbridge/wsbridge/procs"
)

// config is everything the command line and the config file say.
type config struct {
	addresses []string
	port      int
	logLevel  string
	version   bool
	// inetd is --inetd: serve the one connection on stdin, then exit.
	inetd bool
	// listenSet: --port or --address was given, on the command line or
	// in the config file (socket activation refuses them).
	listenSet bool
	// memoryLimit is --memory-limit in bytes, 0 for none: the Go
	// runtime's soft memory limit (see setMemory).
	memoryLimit int64
	// metricsAddress is --metrics-address, where the metrics get a port
	// of their own, at metricsPath ("": the default); "": none.
	metricsAddress, metricsPath string
	bridge                      bridge.Options
	// handover is the hand-over socket, nil for none; handoverOnly says
	// it is the daemon's only listener.
	handover     *handoverConfig
	handoverOnly bool
	// unixSocket is --unixsocket, "" for none, made with unixPerm;
	// unixOnly says it is the daemon's only listener.
	unixSocket string
	unixPerm   unixsock.Perm
	unixOnly   bool
	// certs is the TLS certificate of --ssl, nil without; files are its
	// files, watched every certsEvery (0: on SIGHUP only). madeCert is
	// the fingerprint of a pair --ssl-self-signed just made, "" if none.
	certs      *certs.Store
	files      certs.Files
	certsEvery time.Duration
	madeCert   string
	// redirPort is --redirport: plain HTTP there is sent to https.
	redirPort int
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
	num, mult := v, int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
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

// pathFlag turns on something served at a path of its own: --health
// serves it at def, --health=/PATH at /PATH.
type pathFlag struct{ path, def string }

func (p *pathFlag) String() string   { return p.path }
func (p *pathFlag) IsBoolFlag() bool { return true }
func (p *pathFlag) Set(v string) error {
	switch {
	case v == "true":
		p.path = p.def
	case v == "false":
		p.path = ""
	case strings.HasPrefix(v, "/"):
		p.path = v
	default:
		return fmt.Errorf("want a path starting with /")
	}
	return nil
}

// notYet marks websocketd flags this version does not implement: they are
// accepted by the parser so the error can say so plainly. notYetBool are
// websocketd's booleans among them: parsed as booleans, so that they do
// not take the next argument for their value (--reverselookup
// --cgidir=DIR would hide --cgidir from the error).
var (
	notYet     = []string{"cgidir"}
	notYetBool = []string{"reverselookup"}
)

// flagError is a bad value of one flag; the config file adds the line that
// set it.
type flagError struct {
	name string // the flag, without --
	msg  string
}

func (e *flagError) Error() string { return e.msg }

func badFlag(name, format string, args ...any) error {
	return &flagError{name: name, msg: fmt.Sprintf(format, args...)}
}

// daemonFlags are the settings of the whole daemon: flags on the command
// line, keys at the top of a config file.
type daemonFlags struct {
	port                                        int
	addresses, origins, allowHosts              listFlag
	headers, headersWS, headersHTTP             listFlag
	sameOrigin, devConsole, demo                bool
	maxForks, maxConns                          int
	logLevel, staticDir                         string
	pingInterval, pingTimeout, handshakeTimeout time.Duration
	memoryLimit                                 sizeFlag
	handover                                    handoverFlags
	httpBackend                                 string
	httpBackendTimeout                          time.Duration
	httpBackendMaxBody                          sizeFlag
	unixSocket, unixMode, unixOwner             string
	proxyProtocol, forwardedRFC                 bool
	trustedProxies                              listFlag
	health, metrics                             pathFlag
	drain                                       time.Duration
	metricsAddress                              string
	tls                                         tlsFlags
}

func (d *daemonFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&d.port, "port", 8080, "")
	fs.Var(&d.addresses, "address", "")
	fs.Var(&d.origins, "origin", "")
	fs.BoolVar(&d.sameOrigin, "sameorigin", false, "")
	fs.Var(&d.allowHosts, "allow-host", "")
	fs.IntVar(&d.maxForks, "maxforks", 0, "")
	fs.IntVar(&d.maxConns, "max-conns", 0, "")
	fs.Var(&d.headers, "header", "")
	fs.Var(&d.headersWS, "header-ws", "")
	fs.Var(&d.headersHTTP, "header-http", "")
	fs.StringVar(&d.logLevel, "loglevel", "access", "")
	fs.DurationVar(&d.pingInterval, "ping-interval", 0, "")
	fs.DurationVar(&d.pingTimeout, "ping-timeout", 10*time.Second, "")
	fs.DurationVar(&d.handshakeTimeout, "handshake-timeout", 10*time.Second, "")
	fs.StringVar(&d.staticDir, "staticdir", "", "")
	fs.BoolVar(&d.devConsole, "devconsole", false, "")
	fs.BoolVar(&d.demo, "demo", false, "")
	fs.Var(&d.memoryLimit, "memory-limit", "")
	d.handover.register(fs)
	d.httpBackendMaxBody = 1 << 20
	fs.StringVar(&d.httpBackend, "http-backend", "", "")
	fs.DurationVar(&d.httpBackendTimeout, "http-backend-timeout", 60*time.Second, "")
	fs.Var(&d.httpBackendMaxBody, "http-backend-max-body", "")
	fs.StringVar(&d.unixSocket, "unixsocket", "", "")
	fs.StringVar(&d.unixMode, "unixsocket-mode", "0660", "")
	fs.StringVar(&d.unixOwner, "unixsocket-owner", "", "")
	fs.BoolVar(&d.proxyProtocol, "proxy-protocol", false, "")
	fs.Var(&d.trustedProxies, "trusted-proxy", "")
	fs.BoolVar(&d.forwardedRFC, "trust-forwarded", false, "")
	d.health.def, d.metrics.def = "/health", bridge.DefaultMetricsPath
	fs.Var(&d.health, "health", "")
	fs.DurationVar(&d.drain, "drain", 0, "")
	fs.Var(&d.metrics, "metrics", "")
	fs.StringVar(&d.metricsAddress, "metrics-address", "", "")
	d.tls.register(fs)
}

// apply checks d and sets what it says in c.
func (d *daemonFlags) apply(c *config) error {
	if d.port < 0 || d.port > 65535 {
		return badFlag("port", "--port=%d: want 0 to 65535", d.port)
	}
	for _, a := range d.addresses {
		if err := checkAddress(a); err != nil {
			return badFlag("address", "--address=%s: %v", a, err)
		}
	}
	c.port, c.addresses, c.logLevel = d.port, d.addresses, d.logLevel
	if d.memoryLimit != 0 && d.memoryLimit < minMemoryLimit {
		return badFlag("memory-limit", "--memory-limit=%d: want 0 (no limit) or at least 1MiB", d.memoryLimit)
	}
	c.memoryLimit = int64(d.memoryLimit)
	if _, err := bridge.ParseLevel(d.logLevel); err != nil {
		return badFlag("loglevel", "--loglevel: %v", err)
	}
	b := &c.bridge
	b.Origins, b.SameOrigin, b.AllowedHosts = d.origins, d.sameOrigin, d.allowHosts
	for _, l := range []struct {
		name string
		n    int
	}{{"maxforks", d.maxForks}, {"max-conns", d.maxConns}} {
		if l.n < 0 {
			return badFlag(l.name, "--%s=%d: want 0 (no limit) or more", l.name, l.n)
		}
	}
	b.MaxForks, b.MaxConns = d.maxForks, d.maxConns
	switch {
	case d.pingInterval < 0:
		return badFlag("ping-interval", "--ping-interval must be ≥ 0")
	case d.pingTimeout <= 0:
		return badFlag("ping-timeout", "--ping-timeout must be > 0")
	case d.handshakeTimeout <= 0:
		return badFlag("handshake-timeout", "--handshake-timeout must be > 0")
	}
	b.PingInterval, b.PingTimeout, b.HandshakeTimeout = d.pingInterval, d.pingTimeout, d.handshakeTimeout
	for _, h := range []struct {
		list listFlag
		dst  *http.Header
		name string
	}{{d.headers, &b.Header, "header"}, {d.headersWS, &b.HeaderWS, "header-ws"}, {d.headersHTTP, &b.HeaderHTTP, "header-http"}} {
		*h.dst = nil
		for _, v := range h.list {
			name, value, err := bridge.ParseHeader(v)
			if err != nil {
				return badFlag(h.name, "--%s: %v", h.name, err)
			}
			if *h.dst == nil {
				*h.dst = http.Header{}
			}
			h.dst.Add(name, value)
		}
	}
	if err := checkDir(d.staticDir); err != nil {
		return badFlag("staticdir", "--staticdir=%s: %v", d.staticDir, err)
	}
	b.StaticDir, b.DevConsole, b.Demo = d.staticDir, d.devConsole, d.demo
	if d.httpBackend != "" {
		if _, _, err := backend.ParseAddr(d.httpBackend); err != nil {
			return badFlag("http-backend", "--http-backend=%s: %v", d.httpBackend, err)
		}
	}
	switch {
	case d.httpBackendTimeout <= 0:
		return badFlag("http-backend-timeout", "--http-backend-timeout must be > 0")
	case d.httpBackendMaxBody < 1:
		return badFlag("http-backend-max-body", "--http-backend-max-body must be > 0")
	}
	b.HTTPBackend, b.HTTPBackendTimeout, b.HTTPBackendMaxBody = d.httpBackend, d.httpBackendTimeout, int64(d.httpBackendMaxBody)
	if d.proxyProtocol && len(d.trustedProxies) == 0 {
		return badFlag("proxy-protocol", "--proxy-protocol: the PROXY header is accepted only from trusted proxies, and none is given: name the proxies in front with --trusted-proxy=CIDR (unix for --unixsocket)")
	}
	b.ProxyProtocol, b.TrustedProxies, b.ForwardedRFC = d.proxyProtocol, d.trustedProxies, d.forwardedRFC
	if err := d.applyUnix(c); err != nil {
		return err
	}
	if err := d.applyHealth(c); err != nil {
		return err
	}
	return d.tls.apply(c)
}

// applyUnix checks --unixsocket and its mode and owner.
func (d *daemonFlags) applyUnix(c *config) error {
	c.unixSocket = d.unixSocket
	if d.unixSocket == "" {
		if d.unixOwner != "" || d.unixMode != "0660" {
			return badFlag("unixsocket-mode", "--unixsocket-mode and --unixsocket-owner need --unixsocket=PATH, the socket they are about")
		}
		return nil
	}
	mode, err := strconv.ParseUint(d.unixMode, 8, 32)
	if err != nil || mode == 0 || mode > 0o777 {
		return badFlag("unixsocket-mode", "--unixsocket-mode=%s: want octal permissions such as 0660", d.unixMode)
	}
	c.unixPerm = unixsock.Perm{Mode: fs.FileMode(mode)}
	if d.unixOwner != "" {
		if c.unixPerm.UID, c.unixPerm.GID, err = lookupOwner(d.unixOwner); err != nil {
			return badFlag("unixsocket-owner", "--unixsocket-owner=%s: %v", d.unixOwner, err)
		}
	}
	return nil
}

// applyHealth checks and sets what a load balancer and a scraper use.
func (d *daemonFlags) applyHealth(c *config) error {
	switch {
	case d.drain < 0:
		return badFlag("drain", "--drain must be ≥ 0")
	case d.drain > 0 && d.health.path == "":
		// Nothing else tells a load balancer to stop sending clients.
		return badFlag("drain", "--drain=%s answers health checks with 503 before shutting down: add --health", d.drain)
	case d.health.path != "" && d.health.path == d.metrics.path && d.metricsAddress == "":
		return badFlag("metrics", "--health and --metrics are both at %s: give one another path", d.health.path)
	}
	b := &c.bridge
	b.HealthPath, b.Drain = d.health.path, d.drain
	b.MetricsPath, c.metricsAddress, c.metricsPath = "", "", ""
	if d.metricsAddress == "" {
		b.MetricsPath = d.metrics.path // on the public port: asked for
		return nil
	}
	host, port, err := net.SplitHostPort(d.metricsAddress)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
			err = errors.New("want a port number from 1 to 65535")
		} else if host != "" {
			err = checkAddress(host)
		}
	}
	if err != nil {
		return badFlag("metrics-address", "--metrics-address=%s: %v (want HOST:PORT, e.g. 127.0.0.1:9101)", d.metricsAddress, err)
	}
	c.metricsAddress, c.metricsPath = d.metricsAddress, d.metrics.path
	return nil
}

// endpointFlags are the settings of one endpoint: flags on the command
// line for COMMAND (or --dir), keys of an [endpoint] section of a config
// file.
type endpointFlags struct {
	dir, workdir         string
	framing, passenv     string
	binary               bool
	closems              uint
	maxMessage           sizeFlag
	shared               sharedFlag
	restart              string
	queue                sizeFlag
	dropSlow, cgiMode    bool
	cgiPerConn, cgiTotal int
	cgiTimeout           time.Duration
	cgiOut               sizeFlag
	assemblyBudget       sizeFlag
}

func (e *endpointFlags) register(fs *flag.FlagSet) {
	e.maxMessage, e.queue, e.cgiOut = 1<<20, 256<<10, 1<<20
	fs.StringVar(&e.dir, "dir", "", "")
	fs.StringVar(&e.workdir, "workdir", "", "")
	fs.StringVar(&e.framing, "framing", "", "")
	fs.BoolVar(&e.binary, "binary", false, "")
	fs.StringVar(&e.passenv, "passenv", "PATH,LD_LIBRARY_PATH", "")
	fs.UintVar(&e.closems, "closems", 0, "")
	fs.Var(&e.maxMessage, "max-message", "")
	fs.Var(&e.shared, "shared", "")
	fs.StringVar(&e.restart, "on-restart", "close", "")
	fs.Var(&e.queue, "queue", "")
	fs.BoolVar(&e.dropSlow, "drop-slow", false, "")
	fs.BoolVar(&e.cgiMode, "cgi-per-message", false, "")
	fs.IntVar(&e.cgiPerConn, "cgi-per-conn", 4, "")
	fs.IntVar(&e.cgiTotal, "cgi-total", 64, "")
	fs.DurationVar(&e.cgiTimeout, "cgi-timeout", 30*time.Second, "")
	fs.Var(&e.cgiOut, "cgi-max-output", "")
	fs.Var(&e.assemblyBudget, "assembly-budget", "")
}

// endpointFlagNames are the names of the per-endpoint flags.
var endpointFlagNames = func() map[string]bool {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	new(endpointFlags).register(fs)
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}()

// endpoint checks e and returns the endpoint that runs command, or the
// scripts of --dir, at path.
func (e *endpointFlags) endpoint(path string, command []string) (bridge.Endpoint, error) {
	ep := bridge.Endpoint{Path: path, Command: command, ScriptDir: e.dir, Dir: e.workdir}
	switch {
	case e.binary && e.framing != "" && e.framing != "raw":
		return ep, badFlag("framing", "--binary means --framing=raw, but --framing=%s was given", e.framing)
	case e.binary:
		ep.Framing = "raw"
	default:
		ep.Framing = e.framing
	}
	for _, v := range strings.Split(e.passenv, ",") {
		if v = strings.TrimSpace(v); v != "" {
			ep.PassEnv = append(ep.PassEnv, v)
		}
	}
	if err := checkFraming(ep.Framing, e.shared != ""); err != nil {
		return ep, badFlag("framing", "--framing=%s: %v", ep.Framing, err)
	}
	for _, d := range []struct{ name, path string }{{"dir", e.dir}, {"workdir", e.workdir}} {
		if err := checkDir(d.path); err != nil {
			return ep, badFlag(d.name, "--%s=%s: %v", d.name, d.path, err)
		}
	}
	ep.CloseGrace = time.Duration(e.closems) * time.Millisecond
	ep.MaxMessage = int64(e.maxMessage)
	if e.maxMessage == 0 {
		ep.MaxMessage = bridge.NoLimit
	}
	switch {
	case e.shared != "" && e.cgiMode:
		return ep, badFlag("cgi-per-message", "--shared and --cgi-per-message are two different modes: choose one")
	case e.shared != "":
		ep.Mode = bridge.ModeShared
		ep.Shared.Lazy = e.shared == "lazy"
	case e.cgiMode:
		ep.Mode = bridge.ModeCGI
	}
	switch e.restart {
	case "close":
	case "keep":
		ep.Shared.KeepClients = true
	default:
		return ep, badFlag("on-restart", "--on-restart=%s: want close or keep", e.restart)
	}
	if e.closems > maxCloseMS {
		return ep, badFlag("closems", "--closems=%d: want 0 to %d (an hour)", e.closems, maxCloseMS)
	}
	if e.queue < 512 {
		return ep, badFlag("queue", "--queue=%d: want at least 512 bytes", e.queue)
	}
	ep.Shared.Queue = int(min(e.queue, 1<<30))
	ep.Shared.DropSlow = e.dropSlow
	ep.AssemblyBudget = int64(min(e.assemblyBudget, 1<<40)) // 0: the default
	for _, l := range []struct {
		name string
		ok   bool
	}{{"cgi-per-conn", e.cgiPerConn > 0}, {"cgi-total", e.cgiTotal > 0}, {"cgi-timeout", e.cgiTimeout > 0}, {"cgi-max-output", e.cgiOut > 0}} {
		if !l.ok {
			return ep, badFlag(l.name, "--%s must be > 0", l.name)
		}
	}
	ep.CGI = bridge.CGIOptions{PerConn: e.cgiPerConn, Total: e.cgiTotal, Timeout: e.cgiTimeout, MaxOut: int64(e.cgiOut)}
	return ep, nil
}

// checkProgram fails unless ep's program can be started (its script
// directory is checked with the rest of the options).
func checkProgram(ep bridge.Endpoint) error {
	if len(ep.Command) == 0 {
		return nil
	}
	var env []string
	if slices.Contains(ep.PassEnv, "PATH") {
		if v, ok := os.LookupEnv("PATH"); ok {
			env = []string{"PATH=" + v}
		}
	}
	if _, err := procs.LookPath(procs.Spec{Path: ep.Command[0], Env: env, Dir: ep.Dir}); err != nil {
		return fmt.Errorf("cannot run the program %w", err)
	}
	return nil
}

// parseFlags reads the command line, and the config file it names, into a
// config, and checks that every endpoint can run. It returns flag.ErrHelp
// after printing help to out for --help.
func parseFlags(args []string, out io.Writer) (config, error) {
	var (
		c          config
		d          daemonFlags
		e          endpointFlags
		configPath string
	)
	fs := flag.NewFlagSet("wsbridge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	d.register(fs)
	e.register(fs)
	fs.StringVar(&configPath, "config", "", "")
	fs.BoolVar(&c.version, "version", false, "")
	fs.BoolVar(&c.inetd, "inetd", false, "")
	unsupported := map[string]bool{}
	for _, name := range notYet {
		fs.String(name, "", "")
		unsupported[name] = true
	}
	for _, name := range notYetBool {
		fs.Bool(name, false, "")
		unsupported[name] = true
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, usage)
			return c, err
		}
		return c, flagSyntaxError(fs, err)
	}
	set := map[string]bool{}
	var setNotYet []string
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if unsupported[f.Name] {
			setNotYet = append(setNotYet, "--"+f.Name)
		}
	})
	if len(setNotYet) > 0 {
		return c, fmt.Errorf("%s: websocketd flag not supported by this version of wsbridge yet", strings.Join(setNotYet, ", "))
	}
	if c.version {
		return c, nil
	}

	command := fs.Args()
	own := len(command) > 0 || set["dir"] // the command line has an endpoint
	if len(command) > 0 && set["dir"] {
		return c, fmt.Errorf("--dir=%s and a COMMAND (%s): give one", e.dir, command[0])
	}
	var eps []bridge.Endpoint
	if configPath != "" {
		file, err := readConfig(configPath)
		if err != nil {
			return c, err
		}
		if err := file.mergeDaemon(fs, set); err != nil {
			return c, err
		}
		eps = file.endpoints
		var stray []string
		for name := range set {
			if endpointFlagNames[name] {
				stray = append(stray, "--"+name)
			}
		}
		slices.Sort(stray)
		switch {
		case own && file.catchAll != 0:
			return c, fmt.Errorf("the COMMAND or --dir on the command line and [endpoint] at %s:%d both serve every path: keep one", configPath, file.catchAll)
		case !own && len(stray) > 0:
			return c, fmt.Errorf("%s: these flags apply to the COMMAND of the command line, and there is none: set them in an [endpoint] section of %s", strings.Join(stray, ", "), configPath)
		case !own && len(eps) == 0:
			return c, fmt.Errorf("%s has no [endpoint] section and the command line no COMMAND: nothing to serve", configPath)
		}
	} else if !own {
		return c, errors.New("no program given: usage: wsbridge [flags] COMMAND [ARGS...], --dir=DIR or --config=FILE (see wsbridge --help)")
	}
	fs.Visit(func(f *flag.Flag) { c.listenSet = c.listenSet || f.Name == "port" || f.Name == "address" })
	if c.inetd && c.listenSet {
		return c, errors.New("--inetd serves the connection inetd passes on stdin: --port and --address have nothing to listen on, remove them")
	}
	if own {
		ep, err := e.endpoint("", command)
		if err == nil {
			err = checkProgram(ep)
		}
		if err != nil {
			return c, err
		}
		eps = append(eps, ep)
	}
	if err := d.apply(&c); err != nil {
		return c, err
	}
	if err := d.handover.apply(&c, set); err != nil {
		return c, err
	}
	c.unixOnly = c.unixSocket != "" && !c.listenSet
	if c.unixSocket != "" && c.inetd {
		return c, errors.New("--inetd serves the connection inetd passes on stdin: --unixsocket has nothing to listen on, remove it")
	}
	switch {
	case c.inetd && c.bridge.Drain > 0:
		return c, errors.New("--inetd serves one connection, which no load balancer checks: remove --drain")
	case c.inetd && c.redirPort != 0:
		return c, errors.New("--inetd serves the one connection inetd passes: --redirport has nothing to listen on; give inetd a line of its own for the plain port")
	case c.inetd && c.metricsAddress != "":
		return c, errors.New("--inetd starts a wsbridge per connection, which cannot each have --metrics-address: remove it (--metrics serves them on the connection's port)")
	}
	c.bridge.Endpoints = eps
	if err := c.bridge.Check(); err != nil {
		return c, err
	}
	return c, nil
}
