//go:build !wsbridge_minimal

package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wsbridge/wsbridge/bridge/certs"
)

// tlsInBuild says whether this build serves TLS.
const tlsInBuild = true

// load loads the certificate of --ssl, making it first with
// --ssl-self-signed when neither file exists.
func (t *tlsFlags) load(c *config) error {
	if t.selfSigned {
		names := append([]string{}, t.selfSignedNames...)
		if h, err := os.Hostname(); err == nil && h != "" {
			names = append(names, h)
		}
		for _, a := range c.addresses {
			names = append(names, strings.Trim(a, "[]"))
		}
		fp, made, err := certs.SelfSigned(t.cert, t.key, names)
		if err != nil {
			return badFlag("ssl-self-signed", "--ssl-self-signed: %v", err)
		}
		if made {
			c.madeCert = fp
		}
	} else if len(t.selfSignedNames) > 0 {
		return badFlag("ssl-name", "--ssl-name names the self-signed certificate wsbridge makes: add --ssl-self-signed")
	}
	store, err := certs.Load(certs.Files{Cert: t.cert, Key: t.key, CA: t.ca}, nil)
	if err != nil {
		name := "sslcert"
		var fe *certs.FileError
		if errors.As(err, &fe) {
			name = map[string]string{certs.RoleCert: "sslcert", certs.RoleKey: "sslkey", certs.RoleCA: "sslca"}[fe.Role]
		}
		return badFlag(name, "--%s: %v", name, err)
	}
	c.certs, c.files = store, certs.Files{Cert: t.cert, Key: t.key, CA: t.ca}
	c.bridge.TLS = store.Config()
	return nil
}

// watchCerts logs the certificate served and reloads it on SIGHUP and,
// every --ssl-reload-check, when its files change, until ctx ends.
func watchCerts(ctx context.Context, c config, log *slog.Logger) {
	if c.certs == nil {
		return
	}
	if c.madeCert != "" {
		log.Warn("made a self-signed TLS certificate (--ssl-self-signed): browsers will warn until it is trusted; check its fingerprint on first connection", "cert", c.files.Cert, "key", c.files.Key, "fingerprint", c.madeCert)
	}
	log.Info("TLS certificate", "cert", c.files.Cert, "fingerprint", c.certs.Fingerprint(), "client_ca", c.files.CA)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		// SIGHUP stays caught after ctx ends, never back to its
		// default: a certbot hook's HUP during shutdown must not kill
		// the daemon before its programs are ended.
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the TLS certificate")
				_ = c.certs.Reload() // logs either way
			case <-ctx.Done():
				return
			}
		}
	}()
	if c.certsEvery > 0 {
		go c.certs.Watch(ctx, c.certsEvery)
	}
}
