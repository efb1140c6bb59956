package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pair writes a fresh self-signed certificate for 127.0.0.1 and its key
// into dir under the names given, and returns the certificate's DER.
func pair(t *testing.T, cert, key string) []byte {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(priv)
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return der
}

// served returns the certificate a TLS client sees from a listener
// configured by s.
func served(t *testing.T, s *Store) []byte {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// logBuf is a locked buffer for a logger the watcher writes from its own
// goroutine.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pair(t, cert, key)
	other := filepath.Join(dir, "other.pem")
	pair(t, other, filepath.Join(dir, "otherkey.pem"))
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name  string
		files Files
		want  []string
	}{
		{"missing certificate", Files{Cert: unreadable, Key: key}, []string{"missing.pem", "no such file"}},
		{"not PEM", Files{Cert: garbage, Key: key}, []string{"garbage.pem", "not PEM"}},
		{"key given as certificate", Files{Cert: key, Key: key}, []string{"key.pem", "CERTIFICATE"}},
		{"key of another certificate", Files{Cert: other, Key: key}, []string{"other.pem", "not the certificate's"}},
		{"CA bundle not PEM", Files{Cert: cert, Key: key, CA: garbage}, []string{"garbage.pem", "not PEM"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.files, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestReloadAndWatch(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := pair(t, cert, key)
	var log logBuf
	s, err := Load(Files{Cert: cert, Key: key}, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served(t, s), first) {
		t.Fatal("not serving the certificate loaded")
	}
	if sum := sha256.Sum256(first); s.Fingerprint() != fingerprint(sum[:]) {
		t.Errorf("fingerprint %s", s.Fingerprint())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	waitServing := func(want []byte, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !bytes.Equal(served(t, s), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the new certificate is not served\nlog:\n%s", what, log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// An atomic rename of each file, as certbot's deploy hooks do.
	next := filepath.Join(dir, "next")
	if err := os.Mkdir(next, 0o755); err != nil {
		t.Fatal(err)
	}
	second := pair(t, filepath.Join(next, "cert.pem"), filepath.Join(next, "key.pem"))
	if err := os.Rename(filepath.Join(next, "key.pem"), key); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(next, "cert.pem"), cert); err != nil {
		t.Fatal(err)
	}
	waitServing(second, "atomic rename")

	// A symlink swap, the Kubernetes ..data way: cert.pem and key.pem
	// are links into a directory a link names, and that link changes.
	linked := filepath.Join(dir, "linked")
	for _, name := range []string{"v1", "v2"} {
		if err := os.MkdirAll(filepath.Join(linked, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	v1 := pair(t, filepath.Join(linked, "v1", "cert.pem"), filepath.Join(linked, "v1", "key.pem"))
	v2 := pair(t, filepath.Join(linked, "v2", "cert.pem"), filepath.Join(linked, "v2", "key.pem"))
	if err := os.Symlink("v1", filepath.Join(linked, "..data")); err != nil {
		t.Fatal(err)
	}
	lc, lk := filepath.Join(linked, "cert.pem"), filepath.Join(linked, "key.pem")
	_ = os.Symlink("..data/cert.pem", lc)
	_ = os.Symlink("..data/key.pem", lk)
	var log2 logBuf
	s, err = Load(Files{Cert: lc, Key: lk}, slog.New(slog.NewTextHandler(&log2, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { s.Watch(ctx2, 20*time.Millisecond); close(done2) }()
	defer func() { cancel2(); <-done2 }()
	waitServing(v1, "the linked pair")
	tmp := filepath.Join(linked, "..data_tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(linked, "..data")); err != nil {
		t.Fatal(err)
	}
	waitServing(v2, "symlink swap")

	// A broken new pair keeps the old one, and says why, naming the file.
	if err := os.WriteFile(filepath.Join(linked, "v2", "cert.pem"), []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log2.String(), "not reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the broken certificate:\n%s", log2.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log2.String(), "linked/cert.pem: not PEM") {
		t.Errorf("the log does not name the file:\n%s", log2.String())
	}
	if !bytes.Equal(served(t, s), v2) {
		t.Error("a broken certificate replaced the one served")
	}
	if err := s.Reload(); err == nil {
		t.Error("Reload of a broken certificate: no error")
	}
	if !bytes.Equal(served(t, s), v2) {
		t.Error("a broken certificate replaced the one served after Reload")
	}
}

func TestClientCA(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pair(t, cert, key)
	ca := filepath.Join(dir, "ca.pem")
	pair(t, ca, filepath.Join(dir, "cakey.pem"))
	s, err := Load(Files{Cert: cert, Key: key, CA: ca}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := s.Config().GetConfigForClient(nil)
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Errorf("client auth %v, CAs %v: want certificates required and checked", cfg.ClientAuth, cfg.ClientCAs)
	}
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "http/1.1" {
		t.Errorf("min version %x, ALPN %v", cfg.MinVersion, cfg.NextProtos)
	}
}

func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "etc", "cert.pem"), filepath.Join(dir, "etc", "key.pem")
	fp, made, err := SelfSigned(cert, key, []string{"board.lan", "192.168.1.10"})
	if err != nil || !made {
		t.Fatalf("made %v, %v", made, err)
	}
	for name, want := range map[string]os.FileMode{cert: 0o644, key: 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	s, err := Load(Files{Cert: cert, Key: key}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if s.Fingerprint() != fp {
		t.Errorf("fingerprint %s, made %s", s.Fingerprint(), fp)
	}
	leaf, err := x509.ParseCertificate(served(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key %T, want ECDSA", leaf.PublicKey)
	}
	for _, host := range []string{"localhost", "board.lan", "127.0.0.1", "::1", "192.168.1.10"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if leaf.NotAfter.Before(time.Now().Add(9 * 365 * 24 * time.Hour)) {
		t.Errorf("expires %v", leaf.NotAfter)
	}
	// A second start keeps the pair.
	before, _ := os.ReadFile(key)
	if _, made, err := SelfSigned(cert, key, nil); err != nil || made {
		t.Errorf("second start: made %v, %v", made, err)
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Error("the key was rewritten")
	}
	// Half a pair is refused, and the half there is left alone.
	if err := os.Remove(cert); err != nil {
		t.Fatal(err)
	}
	_, made, err = SelfSigned(cert, key, nil)
	if err == nil || made || !strings.Contains(err.Error(), "key.pem exists") {
		t.Errorf("a key without its certificate: made %v, %v", made, err)
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Error("the key was touched")
	}
	entries, _ := os.ReadDir(filepath.Dir(key))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}
