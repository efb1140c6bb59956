package bridge

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// testTLS returns a server configuration with a certificate for
// 127.0.0.1, and a client one that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// TestTLSIdleParks: idle wss clients park as plain ones do: no goroutine
// of the bridge waits for them, and each still echoes afterwards,
// including a message that arrives as several records at once.
func TestTLSIdleParks(t *testing.T) {
	const n = 20
	srvTLS, cliTLS := testTLS(t)
	s := serveStoppable(t, Options{TLS: srvTLS, Endpoints: []Endpoint{{Command: []string{testChildPath(t), "echo"}}}})
	var cs []*wstest.Conn
	for range n {
		cs = append(cs, wstest.MustDial(t, s.addr, wstest.Options{TLS: cliTLS}))
	}
	for i, c := range cs {
		send(t, c, "hello", 0)
		expectWhole(t, c, "hello")
		if i == 0 {
			if st := c.Conn.(*tls.Conn).ConnectionState(); st.Version != tls.VersionTLS13 {
				t.Errorf("TLS version %x, want 1.3 (%x) where the client has it", st.Version, tls.VersionTLS13)
			}
		}
	}
	waitParked(t, n, "wss clients")
	// Three messages, three records sent back to back: the server's
	// TLS connection may take them off the socket in one read, and the
	// parked reader must not leave the two it holds behind.
	for _, c := range cs {
		for _, m := range []string{"a", "b", "c"} {
			if _, err := c.Conn.Write(wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte(m)})); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range cs {
		for _, m := range []string{"a", "b", "c"} {
			expectWhole(t, c, m)
		}
		answerClose(c, transport.CloseNormal)
	}
}

// TestTLSRefusals: plain HTTP on the TLS port gets a plain 400 saying to
// use https:// or wss://; a client that opens and says nothing, or stops
// half way through its hello, is cut at the handshake timeout; each is
// logged and counted.
func TestTLSRefusals(t *testing.T) {
	srvTLS, _ := testTLS(t)
	lg := newTestLog()
	s := serveStoppable(t, Options{TLS: srvTLS, HandshakeTimeout: 500 * time.Millisecond, MetricsPath: "/metrics", Logger: lg.Logger(),
		Endpoints: []Endpoint{{Command: []string{testChildPath(t), "echo"}}}})

	t.Run("plain HTTP", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req, _ := wstest.UpgradeRequest(s.addr, "/")
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "use https:// or wss://") {
			t.Errorf("plain HTTP on the TLS port: %s %q, want 400 saying to use https:// or wss://", resp.Status, body)
		}
		lg.WaitRecords(t, "refused: plain HTTP on a TLS port (--ssl)", 1, 5*time.Second)
	})
	for _, tc := range []struct {
		name string
		sent []byte
	}{
		{"nothing sent", nil},
		{"half a hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := conn.Write(tc.sent); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := io.Copy(io.Discard, conn)
			if took := time.Since(start); err != nil || took > 5*time.Second {
				t.Fatalf("the connection ended after %v with %v (%d bytes), want closed at the 500ms handshake timeout", took, err, n)
			}
		})
	}
	lg.WaitRecords(t, "TLS handshake not finished in time: closed", 2, 5*time.Second)

	_, cliTLS := testTLS(t) // trusts another certificate: the handshake fails
	if _, err := wstest.Dial(s.addr, wstest.Options{TLS: cliTLS}); err == nil {
		t.Fatal("a client that trusts another certificate got through")
	}
	lg.WaitRecords(t, "TLS handshake failed", 1, 5*time.Second)

	metrics := scrapeTLS(t, s.addr, srvTLS)
	for _, want := range []string{
		`wsbridge_connection_failures_total{reason="plain_http_on_tls"} 1`,
		`wsbridge_connection_failures_total{reason="tls_timeout"} 2`,
		`wsbridge_connection_failures_total{reason="tls_handshake"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
}

// scrapeTLS gets the metrics over https.
func scrapeTLS(t *testing.T, addr string, srv *tls.Config) string {
	t.Helper()
	pool := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(srv.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(leaf)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	resp, err := cl.Get("https://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestTLSShutdownCutsHandshakes: a client that opened a connection to
// the TLS port and said nothing (a browser's preconnect) does not hold
// shutdown for the handshake timeout.
func TestTLSShutdownCutsHandshakes(t *testing.T) {
	srvTLS, _ := testTLS(t)
	s := serveStoppable(t, Options{TLS: srvTLS, HandshakeTimeout: time.Minute, Endpoints: []Endpoint{{Command: []string{testChildPath(t), "echo"}}}})
	for range 3 {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	time.Sleep(200 * time.Millisecond) // in their wait for a first byte
	start := time.Now()
	s.shutdown()
	if err := s.wait(t, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with silent TLS connections open, want them cut at once (handshake timeout 1m)", took)
	}
}

// TestTLS12CloseWithCloseNotify: a TLS 1.2 client that sends its close
// frame and close_notify back to back (as embedded TLS stacks do) has
// its close frame read, not lost with the end of the stream: the access
// log has its 1000, not 1006.
func TestTLS12CloseWithCloseNotify(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	cliTLS.MaxVersion = tls.VersionTLS12
	lg := newTestLog()
	s := serveStoppable(t, Options{TLS: srvTLS, Logger: lg.Logger(), Endpoints: []Endpoint{{Command: []string{testChildPath(t), "echo"}}}})
	for range 5 {
		c := wstest.MustDial(t, s.addr, wstest.Options{TLS: cliTLS})
		send(t, c, "hi", 0)
		expectWhole(t, c, "hi")
		time.Sleep(20 * time.Millisecond) // parked
		if err := c.WriteClose(1000, "bye"); err != nil {
			t.Fatal(err)
		}
		_ = c.Conn.(*tls.Conn).Close() // close_notify, at once
	}
	for _, rec := range lg.WaitRecords(t, "session", 5, 10*time.Second) {
		if rec["close"] != "1000" || rec["close_by"] != "client" {
			t.Errorf("access record %v: want close=1000 close_by=client", rec)
		}
	}
}
