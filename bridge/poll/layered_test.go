package poll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tlsSource is the Layered adapter the package doc describes, for a
// *tls.Conn over TCP: it parks on the TCP socket and reads what is ready
// with a Read under a deadline already past, which crypto/tls treats as
// temporary, so the connection stays usable.
type tlsSource struct {
	*tls.Conn
	tcp *net.TCPConn

	mu       sync.Mutex
	deadline time.Time // the read deadline the owner set
}

func (s *tlsSource) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return s.Conn.SetReadDeadline(t)
}

func (s *tlsSource) Underlying() (syscall.RawConn, error) { return s.tcp.SyscallConn() }

func (s *tlsSource) ReadNow(p []byte) (int, error) {
	s.mu.Lock()
	found := s.deadline
	s.mu.Unlock()
	_ = s.Conn.SetReadDeadline(time.Unix(1, 0))
	n, err := s.Conn.Read(p)
	_ = s.Conn.SetReadDeadline(found)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, ErrWouldBlock
	}
	return n, err
}

var _ Layered = (*tlsSource)(nil)

// selfSigned returns a certificate for 127.0.0.1 made for the test.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsPair returns the server side of a TLS connection over loopback TCP,
// as a Layered source, and the client, both past the handshake.
func tlsPair(t *testing.T) (*tlsSource, *tls.Conn) {
	t.Helper()
	s, c := tcpPair(t)
	cert := selfSigned(t)
	pool := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(leaf)
	server := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}})
	client := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	errc := make(chan error, 1)
	go func() { errc <- client.Handshake() }()
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	if err := server.Handshake(); err != nil {
		t.Fatal(err)
	}
	_ = server.SetDeadline(time.Time{})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// A TLS 1.3 client reads the server's session tickets only when it
	// reads: have it read (nothing comes) so they do not look like data.
	_ = client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, _ = client.Read(make([]byte, 1))
	_ = client.SetReadDeadline(time.Time{})
	return &tlsSource{Conn: server, tcp: s}, client
}

// readAtLayered runs ReadAt where a bug would spin rather than return.
func readAtLayered(t *testing.T, r Reader, buf *[]byte, off int, park bool) (int, error) {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := r.ReadAt(buf, off, park)
		done <- result{n, err}
	}()
	select {
	case res := <-done:
		return res.n, res.err
	case <-time.After(5 * time.Second):
		t.Fatal("ReadAt of a TLS connection did not return")
		return 0, nil
	}
}

func TestLayeredTLSParksIdle(t *testing.T) {
	src, client := tlsPair(t)
	r := NewReader(src, 4096)
	if r.RawConn() == nil {
		t.Fatal("the Reader of a Layered source has no descriptor to park")
	}
	var buf []byte
	n, err := readAtLayered(t, r, &buf, 0, true)
	if !errors.Is(err, ErrWouldBlock) || n != 0 {
		t.Fatalf("ReadAt on an idle TLS connection = %d, %v; want ErrWouldBlock", n, err)
	}
	if buf != nil {
		t.Fatalf("an idle TLS reader holds a buffer of %d bytes", cap(buf))
	}
	// ReadNow put back the deadline it found (none, once ReadAt is done):
	// a plain Read waits for data rather than failing at once.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = client.Write([]byte("after"))
	}()
	p := make([]byte, 16)
	_ = src.SetReadDeadline(time.Time{})
	if n, err := src.Read(p); err != nil || string(p[:n]) != "after" {
		t.Fatalf("Read after ReadAt = %q, %v; the connection did not survive its would-block reads", p[:n], err)
	}

	// Parked, the Poller resumes it when the peer writes, and the read
	// then gets the data.
	poller := newPoller(t)
	resumed := make(chan struct{}, 1)
	if err := poller.Park(r.RawConn(), func() { resumed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed:
		t.Fatal("resumed before the peer wrote")
	case <-time.After(quiet):
	}
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, resumed, "the Poller to resume a parked TLS reader")
	n, err = readAtLayered(t, r, &buf, 0, true)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("ReadAt after the resume = %q, %v", buf[:n], err)
	}
	Put(buf)
}

func TestLayeredTLSRecordReadWholeAcrossCalls(t *testing.T) {
	src, client := tlsPair(t)
	const bufSize = 1024
	r := NewReader(src, bufSize)
	// One record of 16 KiB, the most TLS puts in one: the first read
	// takes a buffer's worth, crypto/tls holds the rest, and the socket
	// shows nothing more.
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	var got []byte
	var buf []byte
	for len(got) < len(msg) {
		n, err := readAtLayered(t, r, &buf, 0, true)
		if errors.Is(err, ErrWouldBlock) {
			// The rest of the record is still on its way (under an
			// emulator it comes in pieces): then parking is right, and
			// a waiting read takes it when it comes.
			n, err = readAtLayered(t, r, &buf, 0, false)
		}
		if err != nil {
			t.Fatalf("after %d of %d bytes: ReadAt = %d, %v; buffered input was left behind", len(got), len(msg), n, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the record came out changed")
	}
	n, err := readAtLayered(t, r, &buf, 0, true)
	if !errors.Is(err, ErrWouldBlock) || buf != nil {
		t.Fatalf("ReadAt once all is read = %d, %v, holding %d bytes; want ErrWouldBlock and no buffer", n, err, cap(buf))
	}
}

func TestLayeredTLSWaitingRead(t *testing.T) {
	src, client := tlsPair(t)
	r := NewReader(src, 4096)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = client.Write([]byte("waited"))
	}()
	var buf []byte
	n, err := readAtLayered(t, r, &buf, 0, false)
	if err != nil || string(buf[:n]) != "waited" {
		t.Fatalf("ReadAt without park = %q, %v; want it to wait for the data", buf[:n], err)
	}
	Put(buf)
	client.Close()
	buf = nil
	if n, err := readAtLayered(t, r, &buf, 0, false); err == nil {
		t.Fatalf("ReadAt after the peer closed = %d, nil; want an error", n)
	}
	Put(buf)
}
