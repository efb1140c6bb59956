package main

// wss: the connection-rate, streaming and idle scenarios again, each
// server started with websocketd's TLS flags (--ssl --sslcert --sslkey)
// and its clients dialling TLS. The run makes its own certificate, a
// self-signed ECDSA P-256 pair as a board makes on first boot, and the
// clients trust it and nothing else; every connection makes a full
// handshake (no session resumption), as a new visitor's does. A server
// that refuses --ssl at start for want of TLS (a -baseline wsbridge from
// before --ssl, a wsbridge_minimal build given as -wsbridge) is not
// measured: its cells read n/a and a note quotes it.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wsbridge/wsbridge/bridge/certs"
	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// newTLS makes the run's certificate and key in dir and returns their
// paths and a client config that trusts the certificate alone.
func newTLS(dir string) (cert, key string, client *tls.Config, err error) {
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, _, err := certs.SelfSigned(cert, key, nil); err != nil {
		return "", "", nil, fmt.Errorf("making the wss certificate: %w", err)
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		return "", "", nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return "", "", nil, fmt.Errorf("making the wss certificate: %s holds no certificate", cert)
	}
	// ServerName set here, so that no dial clones the config.
	return cert, key, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, nil
}

// needsTLS reports whether a variant of the plan serves wss.
func needsTLS(plan []*scenario) bool {
	for _, sc := range plan {
		for _, v := range sc.variants {
			if v.tls {
				return true
			}
		}
	}
	return false
}

// refusesTLS reports whether a server's start failed because it has no
// TLS: status 2, its usage error, on a line that names --ssl and says so
// (a wsbridge from before --ssl: "not supported"; a wsbridge_minimal
// build: "without TLS"). Any other failure, --ssl with a bad certificate
// included, is an error of that server's, to be measured and reported as
// one.
func refusesTLS(err error) (msg string, ok bool) {
	var ee *exitError
	if !errors.As(err, &ee) || ee.status != 2 {
		return "", false
	}
	for _, line := range strings.Split(ee.log, "\n") {
		if strings.Contains(line, "--ssl") && (strings.Contains(line, "not supported") || strings.Contains(line, "without TLS")) {
			return strings.TrimSpace(line), true
		}
	}
	return "", false
}

// checkTLS starts each wss variant of the plan once, before anything is
// measured: one that refuses --ssl leaves the plan, its cells to read
// n/a; one that starts is dialled once, and the TLS it negotiates goes in
// the notes. It returns the plan without the refusing variants.
func (b *bench) checkTLS(ctx context.Context, plan []*scenario) []*scenario {
	var checked []*variant
	for _, sc := range plan {
		for _, v := range sc.variants {
			if !v.tls || slices.Contains(checked, v) {
				continue
			}
			checked = append(checked, v)
			s, err := b.fleet.start(ctx, v)
			if msg, ok := refusesTLS(err); ok {
				b.refused[v] = "no --ssl"
				note := fmt.Sprintf("%s: refused --ssl at start (exit status 2: %q); its wss cells read n/a", v.name, msg)
				b.notes = append(b.notes, note)
				fmt.Fprintf(b.progress, "\n*** wsbench: %s ***\n\n", note)
				continue
			}
			if err != nil {
				continue // measured, to fail there with its log
			}
			if c, err := s.target().dial(5*time.Second, 4<<10); err == nil {
				if tc, ok := c.Conn.(*tls.Conn); ok {
					st := tc.ConnectionState()
					b.notes = append(b.notes, fmt.Sprintf("%s: %s, %s, key exchange %s",
						v.name, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID))
				}
				closeAll([]*wstest.Conn{c})
			}
			b.fleet.stop(s)
		}
	}
	var out []*scenario
	for _, sc := range plan {
		s := *sc
		s.variants = slices.DeleteFunc(slices.Clone(sc.variants), func(v *variant) bool { return b.refused[v] != "" })
		if len(s.variants) > 0 {
			out = append(out, &s)
		}
	}
	return out
}
