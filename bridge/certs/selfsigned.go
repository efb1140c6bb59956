package certs

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// selfSignedLife is how long a first-boot certificate lasts: a board
// nobody renews a certificate on, as OpenWrt's px5g makes them.
const selfSignedLife = 10 * 365 * 24 * time.Hour

// SelfSigned makes a self-signed ECDSA P-256 certificate and key at cert
// and key when neither exists, for the names given (localhost, 127.0.0.1
// and ::1 are always in it), and returns its SHA-256 fingerprint and
// whether it made them. When both exist it does nothing; when only one
// does it refuses, never overwriting a key the user may need. Each file
// is written to a temporary name beside it and renamed into place: the
// key with mode 0600, the certificate 0644.
func SelfSigned(cert, key string, names []string) (fp string, made bool, err error) {
	_, cerr := os.Stat(cert)
	_, kerr := os.Stat(key)
	switch {
	case cerr == nil && kerr == nil:
		return "", false, nil
	case cerr == nil && errors.Is(kerr, fs.ErrNotExist):
		return "", false, fmt.Errorf("%s exists but its key %s does not: not making a new pair over a certificate (remove it, or give its key)", cert, key)
	case kerr == nil && errors.Is(cerr, fs.ErrNotExist):
		return "", false, fmt.Errorf("%s exists but its certificate %s does not: not making a new pair over a key (remove it, or give its certificate)", key, cert)
	case !errors.Is(cerr, fs.ErrNotExist):
		return "", false, cerr
	case !errors.Is(kerr, fs.ErrNotExist):
		return "", false, kerr
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", false, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cmp.Or(host, "wsbridge"), Organization: []string{"wsbridge self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(selfSignedLife),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range append([]string{"localhost", "127.0.0.1", "::1", host}, names...) {
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", false, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", false, err
	}
	// The key first: a certificate without its key is what a crash
	// between the two must not leave, for the next start would refuse it.
	if err := writeAtomic(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", false, err
	}
	if err := writeAtomic(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		_ = os.Remove(key)
		return "", false, err
	}
	sum := sha256.Sum256(der)
	return fingerprint(sum[:]), true, nil
}

// writeAtomic writes b to name with mode perm by way of a temporary file
// in the same directory, synced and renamed: name is either absent or
// whole.
func writeAtomic(name string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename: nothing there
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
