package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Files names the PEM files of a Store. CA, when not "", is the bundle of
// CAs a client certificate must chain to: with it every client must show
// one (websocketd's --sslca).
type Files struct {
	Cert, Key, CA string
}

// Store is the pair a TLS listener serves; see the package doc. Its
// methods may be called from any goroutine.
type Store struct {
	files Files
	log   *slog.Logger

	cur atomic.Pointer[loaded]

	mu   sync.Mutex // one load at a time; guards seen
	seen [3]stamp   // the files' identities at the last load attempt
}

// loaded is one loaded pair and the tls.Config that serves it.
type loaded struct {
	config      *tls.Config
	fingerprint string // SHA-256 of the leaf certificate
	notAfter    time.Time
}

// Load reads files and returns a Store serving them. The error names the
// file at fault and says what is wrong with it. log, when nil, is
// slog.Default().
func Load(files Files, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{files: files, log: log}
	s.seen = s.stamps()
	l, err := load(files, log)
	if err != nil {
		return nil, err
	}
	s.cur.Store(l)
	return s, nil
}

// Config returns the configuration of a TLS listener serving the store:
// TLS 1.2 at least (Go prefers 1.3 where the client has it), Go's cipher
// suites and curves, HTTP/1.1 only. Each handshake takes the pair loaded
// last.
func (s *Store) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().config, nil
		},
	}
}

// Fingerprint returns the SHA-256 fingerprint of the certificate served
// now, as openssl x509 -fingerprint -sha256 prints it.
func (s *Store) Fingerprint() string { return s.cur.Load().fingerprint }

// Reload loads the files again. On an error the pair served before stays,
// and the error names the file; either way the outcome is logged.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = s.stamps()
	return s.reloadLocked()
}

func (s *Store) reloadLocked() error {
	l, err := load(s.files, s.log)
	if err != nil {
		s.log.Error("TLS certificate not reloaded: still serving the one loaded before", "err", err, "fingerprint", s.cur.Load().fingerprint)
		return err
	}
	s.cur.Store(l)
	s.log.Info("TLS certificate loaded", "cert", s.files.Cert, "fingerprint", l.fingerprint, "expires", l.notAfter.Format(time.DateOnly))
	return nil
}

// Watch reloads the files whenever one of them changes, checking every
// interval, until ctx is done. A change half made (a key written before
// its certificate) fails to load and is tried again at the next change.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		if now := s.stamps(); now != s.seen {
			s.seen = now
			_ = s.reloadLocked()
		}
		s.mu.Unlock()
	}
}

// stamp is what tells one version of a file from the next.
type stamp struct {
	dev, ino uint64
	size     int64
	mtime    int64
	missing  bool
}

func (s *Store) stamps() [3]stamp {
	var out [3]stamp
	for i, name := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name) // through symlinks: a swapped link is a new file
		if err != nil {
			out[i].missing = true
			continue
		}
		out[i].size, out[i].mtime = fi.Size(), fi.ModTime().UnixNano()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			out[i].dev, out[i].ino = uint64(st.Dev), uint64(st.Ino)
		}
	}
	return out
}

// load reads and checks a pair and its CA bundle.
func load(f Files, log *slog.Logger) (*loaded, error) {
	certPEM, err := readPEM(f.Cert, "certificate")
	if err != nil {
		return nil, &FileError{Role: RoleCert, Err: err}
	}
	keyPEM, err := readPEM(f.Key, "key")
	if err != nil {
		return nil, &FileError{Role: RoleKey, Err: err}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		role, why := explain(err)
		return nil, &FileError{Role: role, Err: fmt.Errorf("%s and %s: %w", f.Cert, f.Key, why)}
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, &FileError{Role: RoleCert, Err: fmt.Errorf("%s: %w", f.Cert, err)}
		}
	}
	if time.Now().After(leaf.NotAfter) {
		// Served anyway, as a board's clock may be wrong; said loudly.
		log.Warn("TLS certificate expired", "cert", f.Cert, "not_after", leaf.NotAfter)
	}
	sum := sha256.Sum256(leaf.Raw)
	l := &loaded{fingerprint: fingerprint(sum[:]), notAfter: leaf.NotAfter}
	l.config = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
		Certificates: []tls.Certificate{pair},
	}
	if f.CA != "" {
		caPEM, err := readPEM(f.CA, "CA bundle")
		if err != nil {
			return nil, &FileError{Role: RoleCA, Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, &FileError{Role: RoleCA, Err: fmt.Errorf("%s: no CA certificate in it", f.CA)}
		}
		l.config.ClientCAs = pool
		l.config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return l, nil
}

// readPEM reads a file that must hold PEM; what names what it should hold.
func readPEM(name, what string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("no %s file given", what)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("the %s: %w", what, err)
	}
	if blk, _ := pem.Decode(b); blk == nil {
		return nil, fmt.Errorf("%s: not PEM: a %s file begins with -----BEGIN", name, what)
	}
	return b, nil
}

// explain rewords crypto/tls's errors about a pair for a user, and says
// which file is at fault.
func explain(err error) (role string, why error) {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "does not match"):
		return RoleKey, errors.New("the key is not the certificate's (tls: private key does not match public key)")
	case strings.Contains(msg, "failed to find any PEM data in certificate"),
		strings.Contains(msg, "failed to find certificate PEM data"):
		return RoleCert, errors.New("no CERTIFICATE block in the certificate file (is it the key?)")
	case strings.Contains(msg, "failed to find PEM block with type ending in \"PRIVATE KEY\""),
		strings.Contains(msg, "failed to find any PEM data in key"):
		return RoleKey, errors.New("no PRIVATE KEY block in the key file (is it the certificate?)")
	case strings.Contains(msg, "private key"):
		return RoleKey, err // one that does not parse
	}
	return RoleCert, err
}

// The files a FileError may be about.
const (
	RoleCert = "cert"
	RoleKey  = "key"
	RoleCA   = "ca"
)

// FileError is a pair or CA bundle that did not load, and which of the
// files is at fault (Role), for a caller to name its flag.
type FileError struct {
	Role string // RoleCert, RoleKey or RoleCA
	Err  error  // names the file
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// fingerprint formats a digest as AB:CD:...
func fingerprint(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
