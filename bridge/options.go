package bridge

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wsbridge/wsbridge/bridge/backend"
	"github.com/wsbridge/wsbridge/bridge/pages"
)

// Options configures a Server. The zero value of every field is a sound
// default, noted beside it; only Endpoints is required.
type Options struct {
	// Endpoints are the programs served, each at its own path (see
	// Endpoint.Path); at least one is required.
	Endpoints []Endpoint

	Origins    []string // --origin entries; "*" allows any page
	SameOrigin bool     // --sameorigin; also the rule when Origins is empty
	// AllowedHosts are Host names served besides IP literals, localhost
	// and the machine's own name (--allow-host): "board.lan", ".lan" for
	// a domain and every name below it, "*" for any Host. Any other Host
	// gets 421, against DNS rebinding (see hostPolicy).
	AllowedHosts []string

	MaxForks int // children running at once; 0: no limit
	MaxConns int // connections open at once, HTTP included; 0: no limit

	PingInterval     time.Duration // ping a client silent this long; 0: never
	PingTimeout      time.Duration // drop a client that leaves a ping unanswered this long; 0: 10s
	HandshakeTimeout time.Duration // whole request head must arrive within it; 0: 10s
	CloseTimeout     time.Duration // wait for the client's close frame; 0: 2s
	MaxHeaderBytes   int           // largest request head; 0: 8 KiB

	ReadBuffer int // pooled buffer for frames from a client; 0: 64 KiB
	OutBuffer  int // pooled buffer for the child's stdout; 0: 128 KiB

	Header     http.Header // every response
	HeaderWS   http.Header // successful upgrades only
	HeaderHTTP http.Header // every response but successful upgrades

	Demo bool // serve the embedded demo page at "/"
	// StaticDir, when set, serves its files to plain GET and HEAD requests
	// (--staticdir): index.html for a directory, no listings, no hidden
	// files, nothing outside it. WebSocket upgrades still go to the
	// endpoints. A path with no file gets 404, but for a path an
	// endpoint was put at (its Path and below, a script of its
	// ScriptDir, or "/" for one at every path), which gets what it would
	// get without StaticDir.
	StaticDir string
	// DevConsole answers a plain GET of an endpoint's path with a page to
	// try the endpoint from a browser (--devconsole).
	DevConsole bool

	// HTTPBackend, when set, is the web server that answers every request
	// but the WebSocket upgrades, on the same port (--http-backend):
	// "host:port" or "unix:/path". Demo, DevConsole and StaticDir are then
	// not served: the backend serves the pages.
	HTTPBackend        string
	HTTPBackendTimeout time.Duration // the backend's response head, then each body read; 0: 60s
	HTTPBackendMaxBody int64         // a chunked request body, buffered for the backend; 0: 1 MiB

	// TrustedProxies are the reverse proxies in front (--trusted-proxy):
	// addresses and CIDRs ("10.0.0.0/8", "::1"), and "unix" for the
	// connections on a unix socket. Only their word on the client is
	// believed: a PROXY header (ProxyProtocol) and the forwarding fields
	// (X-Forwarded-For and -Proto and -Host, or Forwarded). From anyone
	// else those fields are the program's to read, as any other.
	TrustedProxies []string
	// ProxyProtocol says a connection from a trusted proxy begins with a
	// PROXY protocol header, v1 or v2, which names the client; from
	// anyone else a PROXY header is refused. It needs TrustedProxies.
	ProxyProtocol bool
	// ForwardedRFC says the trusted proxies keep the Forwarded field
	// (RFC 7239), not X-Forwarded-For: only the one they keep can be
	// believed, since a client can send the other as it likes.
	ForwardedRFC bool
	trusted      proxies // TrustedProxies, parsed
	// TLS, when set, makes every listener a TLS one (--ssl): each
	// connection's handshake, under HandshakeTimeout, comes before its
	// first request (after its PROXY header, where there is one), and
	// the connection parks when idle as a plain one does. Its
	// GetConfigForClient may change the certificate for the handshakes
	// to come (bridge/certs). Connections handed over by a web server
	// are the web server's TLS, never this.
	TLS *tls.Config
	// HealthPath, when set, answers a plain GET or HEAD of it with 200
	// "ok" while the server serves and 503 "draining" once shutdown has
	// begun (--health): what a load balancer in front checks. It is
	// answered whatever the Host, before the pages and the backend.
	HealthPath string
	// Drain is how long shutdown answers health checks with 503 before it
	// stops accepting and closes the sessions with 1001 (--drain): the
	// time a load balancer needs to see it and send new clients
	// elsewhere. Sessions, old and new, are served meanwhile. 0: none.
	Drain time.Duration
	// MetricsPath, when set, answers a plain GET of it with the counters
	// in the Prometheus text format (--metrics), on the public port; see
	// ServeMetrics for a port of their own instead. "": not served there.
	MetricsPath string

	ServerSoftware string       // SERVER_SOFTWARE for children; "": "wsbridge"
	Logger         *slog.Logger // nil: slog.Default()
}

// Check reports what New would refuse in opts, without building a server:
// a daemon can refuse a bad configuration before it starts anything. It
// reads the file system for the directories opts names; it does not look
// for the programs.
func (opts Options) Check() error {
	opts, err := opts.withDefaults()
	if err == nil {
		eps := make([]*endpoint, len(opts.Endpoints))
		for i, e := range opts.Endpoints {
			eps[i] = &endpoint{Endpoint: e}
		}
		_, err = newRoutes(eps)
	}
	// No "bridge:" prefix: the daemon shows these to its user as they
	// are, after the flag or the config line they come from.
	return err
}

// withDefaults returns opts with zero values replaced by defaults, or an
// error naming the first bad field.
func (opts Options) withDefaults() (Options, error) {
	if len(opts.Endpoints) == 0 {
		return opts, errors.New("no program to run")
	}
	opts.Endpoints = slices.Clone(opts.Endpoints)
	for i, ep := range opts.Endpoints {
		var err error
		if opts.Endpoints[i], err = ep.withDefaults(); err != nil {
			return opts, err
		}
		if ep.Dir != "" {
			// Checked now, not at each client's chdir: a FIFO or a
			// missing directory would fail every session.
			if err := isDir(ep.Dir); err != nil {
				name := cmp.Or(ep.Path, "(every path)")
				return opts, fmt.Errorf("endpoint %s: working directory: %w", name, err)
			}
		}
	}
	if pages.Minimal && (opts.Demo || opts.DevConsole || opts.StaticDir != "") {
		return opts, errMinimal
	}
	if !tlsBuilt && opts.TLS != nil {
		return opts, ErrNoTLS
	}
	if opts.HTTPBackend != "" {
		if _, _, err := backend.ParseAddr(opts.HTTPBackend); err != nil {
			return opts, fmt.Errorf("HTTP backend %w", err)
		}
		if opts.HTTPBackendTimeout < 0 || opts.HTTPBackendMaxBody < 0 {
			return opts, errors.New("HTTP backend limits must not be negative")
		}
	}
	if opts.StaticDir != "" {
		abs, err := filepath.Abs(opts.StaticDir)
		if err == nil {
			err = isDir(abs)
		}
		if err != nil {
			return opts, fmt.Errorf("static directory: %w", err)
		}
		opts.StaticDir = abs
	}
	if _, err := newHostPolicy(opts.AllowedHosts); err != nil {
		return opts, err
	}
	var err error
	if opts.trusted, err = newProxies(opts.TrustedProxies); err != nil {
		return opts, err
	}
	if opts.ProxyProtocol && !opts.trusted.any() {
		return opts, errors.New("the PROXY protocol is accepted only from trusted proxies, and none is given: name the proxies in front with --trusted-proxy=CIDR")
	}
	for _, p := range []struct{ name, path string }{{"health", opts.HealthPath}, {"metrics", opts.MetricsPath}} {
		if p.path != "" && !strings.HasPrefix(p.path, "/") {
			return opts, fmt.Errorf("the %s path %q must start with /", p.name, p.path)
		}
	}
	if opts.HealthPath != "" && opts.HealthPath == opts.MetricsPath {
		return opts, fmt.Errorf("the health and the metrics paths are both %s: choose two", opts.HealthPath)
	}
	if opts.Drain < 0 {
		return opts, errors.New("the drain must not be negative")
	}
	if opts.MaxForks < 0 || opts.MaxConns < 0 {
		return opts, errors.New("limits must not be negative")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.PingTimeout, 10*time.Second)
	def(&opts.HandshakeTimeout, 10*time.Second)
	def(&opts.CloseTimeout, 2*time.Second)
	if opts.PingInterval < 0 || opts.PingTimeout < 0 || opts.HandshakeTimeout < 0 || opts.CloseTimeout < 0 {
		return opts, errors.New("durations must not be negative")
	}
	if opts.MaxHeaderBytes == 0 {
		opts.MaxHeaderBytes = 8 << 10
	}
	if opts.MaxHeaderBytes < 256 {
		return opts, fmt.Errorf("MaxHeaderBytes %d is too small", opts.MaxHeaderBytes)
	}
	if opts.ReadBuffer == 0 {
		opts.ReadBuffer = 64 << 10
	}
	if opts.OutBuffer == 0 {
		opts.OutBuffer = 128 << 10
	}
	if opts.ReadBuffer < 512 || opts.OutBuffer < 512 {
		return opts, errors.New("buffers must be at least 512 bytes")
	}
	if opts.ServerSoftware == "" {
		opts.ServerSoftware = "wsbridge"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return opts, nil
}

// isDir fails unless path is a directory (a stat, which cannot block on a
// special file as an open can).
func isDir(path string) error {
	st, err := os.Stat(path)
	if err == nil && !st.IsDir() {
		err = fmt.Errorf("%s is not a directory", path)
	}
	return err
}

// ErrNoTLS says this build serves no TLS (the wsbridge_minimal build).
var ErrNoTLS = errors.New("this wsbridge is a minimal build (tag wsbridge_minimal), built without TLS (1.8 MB of a MIPS binary): use the full build for --ssl, or terminate TLS at a proxy in front")

// errMinimal says which options the wsbridge_minimal build leaves out.
var errMinimal = errors.New("this wsbridge is a minimal build (tag wsbridge_minimal): it serves WebSocket endpoints only, without the demo page, the dev console or a static directory")

// nonEmpty returns the headers that hold a field.
func nonEmpty(hs ...http.Header) []http.Header {
	var out []http.Header
	for _, h := range hs {
		if len(h) > 0 {
			out = append(out, h)
		}
	}
	return out
}
