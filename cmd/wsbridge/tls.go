package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/wsbridge/wsbridge/bridge"
)

// tlsFlags are websocketd's TLS flags, and the first-boot certificate.
type tlsFlags struct {
	ssl, selfSigned bool
	cert, key, ca   string
	redirPort       int
	reloadEvery     time.Duration
	selfSignedNames listFlag
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.ssl, "ssl", false, "")
	fs.StringVar(&t.cert, "sslcert", "", "")
	fs.StringVar(&t.key, "sslkey", "", "")
	fs.StringVar(&t.ca, "sslca", "", "")
	fs.BoolVar(&t.selfSigned, "ssl-self-signed", false, "")
	fs.Var(&t.selfSignedNames, "ssl-name", "")
	fs.IntVar(&t.redirPort, "redirport", 0, "")
	fs.DurationVar(&t.reloadEvery, "ssl-reload-check", 2*time.Second, "")
}

// apply checks the TLS flags and, with --ssl, loads the certificate (and
// makes it first, with --ssl-self-signed, when neither file exists), so
// that a missing or broken file stops the start with a message naming it.
func (t *tlsFlags) apply(c *config) error {
	c.certs, c.redirPort, c.certsEvery, c.madeCert = nil, t.redirPort, t.reloadEvery, ""
	c.bridge.TLS = nil
	if !t.ssl {
		for _, f := range []struct {
			name string
			set  bool
		}{{"sslcert", t.cert != ""}, {"sslkey", t.key != ""}, {"sslca", t.ca != ""}, {"ssl-self-signed", t.selfSigned}, {"ssl-name", len(t.selfSignedNames) > 0}, {"redirport", t.redirPort != 0}} {
			if f.set {
				return badFlag(f.name, "--%s is about TLS, which is off: add --ssl (with --sslcert=FILE and --sslkey=FILE)", f.name)
			}
		}
		return nil
	}
	if !tlsInBuild {
		return t.load(c) // which says so
	}
	switch {
	case t.cert == "" || t.key == "":
		return badFlag("ssl", "--ssl needs --sslcert=FILE and --sslkey=FILE, the PEM certificate (chain) and its key; --ssl-self-signed makes them on first start when neither exists")
	case t.redirPort < 0 || t.redirPort > 65535:
		return badFlag("redirport", "--redirport=%d: want 1 to 65535", t.redirPort)
	case t.redirPort != 0 && t.redirPort == c.port:
		return badFlag("redirport", "--redirport=%d is --port, the TLS port: give the plain HTTP port to redirect from (e.g. --redirport=80 --port=443)", t.redirPort)
	case t.reloadEvery < 0:
		return badFlag("ssl-reload-check", "--ssl-reload-check must be ≥ 0 (0: reload on SIGHUP only)")
	}
	return t.load(c)
}

// listenRedirect opens --redirport on the addresses the TLS port has,
// each answering with a redirect to https on the port the TLS listeners
// have (--port, or the one socket activation passed), which must be one.
func listenRedirect(c config, srv *bridge.Server, log *slog.Logger, listeners []net.Listener) ([]net.Listener, error) {
	if c.redirPort == 0 {
		return nil, nil
	}
	ports := map[int]bool{}
	for _, l := range listeners {
		if a, ok := l.Addr().(*net.TCPAddr); ok {
			ports[a.Port] = true
		}
	}
	if len(ports) != 1 {
		return nil, badSetup("--redirport=%d redirects to the one TCP port TLS is served on, and there are %d (a unix socket or a hand-over socket has no port a browser can be sent to): remove --redirport, or serve one --port", c.redirPort, len(ports))
	}
	port := 0
	for p := range ports {
		port = p
	}
	addrs := c.addresses
	if len(addrs) == 0 {
		addrs = []string{""}
	}
	tcp, err := listenTCP(addrs, c.redirPort, "redirport")
	if err != nil {
		return nil, fmt.Errorf("--redirport: %w", err)
	}
	var ls []net.Listener
	for _, l := range tcp {
		ls = append(ls, srv.RedirectListener(l, port))
		log.Info("redirecting to https", "url", "http://"+l.Addr().String()+"/", "port", port)
	}
	return ls, nil
}
