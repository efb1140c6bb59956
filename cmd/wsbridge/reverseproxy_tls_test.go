package main

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// TestHAProxyTLSPassthrough: HAProxy in TCP mode in front of wsbridge's
// own TLS, with send-proxy-v2 (haproxy/tls-passthrough.cfg): the client
// sees wsbridge's certificate, the program sees HTTPS=on and the
// client's address, not HAProxy's; and a client that sends a PROXY
// header itself, not through HAProxy, is refused.
func TestHAProxyTLSPassthrough(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "passthrough")
	cert, key, sum := ca.issue("server", false, "127.0.0.1")
	b := startBridge(t, "--ssl", "--sslcert="+cert, "--sslkey="+key, "--proxy-protocol", "--trusted-proxy=127.0.0.1/32", childBin, "env")
	h := startHAProxy(t, "haproxy/tls-passthrough.cfg", "bind :443", "bind 127.0.0.1:{{PORT}}", "127.0.0.1:8443", b.Addr)

	conn := tls.Client(dialClient(t, h.Addr), ca.client("", ""))
	if err := conn.Handshake(); err != nil {
		t.Fatalf("TLS through HAProxy's TCP mode: %v", err)
	}
	c, env := envSession(t, conn, wstest.Options{Host: h.Addr})
	wantClient(t, env, "HTTPS", "on")
	if servedCert(t, h.Addr) != sum {
		t.Error("the certificate through HAProxy is not wsbridge's: TLS did not pass through")
	}
	echoThrough(t, c)
	closeThrough(t, c)

	// Straight to wsbridge from clientIP, an address not trusted: a
	// PROXY header naming anyone is refused.
	raw := dialClient(t, b.Addr)
	fmt.Fprint(raw, "PROXY TCP4 10.9.9.9 127.0.0.1 1234 443\r\n")
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := raw.Read(make([]byte, 64)); err == nil {
		t.Errorf("a PROXY header from an untrusted address got %d bytes of answer, want the connection closed", n)
	}
	if !b.Log.WaitFor("PROXY protocol header from an address not trusted", 5*time.Second) {
		t.Errorf("the forged PROXY header is not logged:\n%s", b.Log)
	}
}
