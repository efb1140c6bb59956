package main

import (
	"bufio"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// fp formats a SHA-256 as the log prints a fingerprint (AB:CD:...).
func fp(sum [32]byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// dialWSS opens a wss:// session at b's address.
func dialWSS(t *testing.T, b *bridgeProc, cfg *tls.Config) *wstest.Conn {
	t.Helper()
	return wstest.MustDial(t, b.Addr, wstest.Options{TLS: cfg})
}

// echoesAfter checks that c echoes msg (after whatever the program printed
// first, for the env child).
func echoesAfter(t *testing.T, c *wstest.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(wstest.OpText, []byte(msg), 0); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, _, err := c.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("waiting for the echo of %q: %v", msg, err)
		}
		if string(data) == msg {
			return
		}
	}
}

// replaceAtomically writes b to name as a certificate tool does: a new
// file renamed over the old.
func replaceAtomically(t *testing.T, name, from string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := name + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// waitServed waits until b's TLS port shows the certificate sum.
func waitServed(t *testing.T, b *bridgeProc, sum [32]byte, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if servedCert(t, b.Addr) == sum {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestTLS: --ssl serves wss:// with the certificate of --sslcert (TLS 1.3
// to a client that has it, nothing below 1.2), the program sees
// HTTPS=on, plain HTTP on the port gets a 400 saying what to use, and a
// certificate renewed on disk (renamed into place) is served to the next
// handshakes while the open session goes on; one that fails to load
// keeps the old.
func TestTLS(t *testing.T) {
	ca := newTestCA(t, "test")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1, sum1 := ca.issue("one", false, "127.0.0.1")
	replaceAtomically(t, cert, c1)
	replaceAtomically(t, key, k1)
	b := startBridge(t, "--ssl", "--sslcert="+cert, "--sslkey="+key, "--ssl-reload-check=100ms", childBin, "env")
	if !b.Log.WaitFor("listening url=https://", 5*time.Second) || !b.Log.WaitFor("fingerprint="+fp(sum1), 5*time.Second) {
		t.Errorf("the log does not say https and the certificate's fingerprint %s:\n%s", fp(sum1), b.Log)
	}

	c := dialWSS(t, b, ca.client("", ""))
	defer c.Conn.Close()
	if v := c.Conn.(*tls.Conn).ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want 1.3", v)
	}
	env := map[string]bool{}
	for !env["SERVER_SOFTWARE"] {
		_, data, _, err := c.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("reading the program's environment: %v", err)
		}
		k, v, _ := strings.Cut(string(data), "=")
		env[k] = true
		if k == "HTTPS" && v != "on" {
			t.Errorf("HTTPS=%s, want on", v)
		}
	}
	if !env["HTTPS"] {
		t.Error("the program has no HTTPS=on over wss://")
	}
	echoesAfter(t, c, "over wss")

	if _, err := wstest.Dial(b.Addr, wstest.Options{TLS: &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11}}); err == nil {
		t.Error("a TLS 1.1 client got through; want 1.2 at least")
	}

	plain, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(plain, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", b.Addr)
	_ = plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(plain), nil)
	if err != nil {
		t.Fatalf("plain HTTP on the TLS port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	plain.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "https:// or wss://") {
		t.Errorf("plain HTTP on the TLS port: %s %q", resp.Status, body)
	}

	// Renewed: the key first, then the certificate, each renamed.
	c2, k2, sum2 := ca.issue("two", false, "127.0.0.1")
	replaceAtomically(t, key, k2)
	replaceAtomically(t, cert, c2)
	if !waitServed(t, b, sum2, 10*time.Second) {
		t.Fatalf("the renewed certificate is not served:\n%s", b.Log)
	}
	echoesAfter(t, c, "still open") // the session begun on the old one
	c.Conn.Close()

	// A broken file: the old pair stays, and the log says why.
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	replaceAtomically(t, cert, bad)
	if !b.Log.WaitFor("TLS certificate not reloaded", 10*time.Second) || !strings.Contains(b.Log.String(), cert+": not PEM") {
		t.Errorf("a broken certificate file is not logged with its name:\n%s", b.Log)
	}
	if servedCert(t, b.Addr) != sum2 {
		t.Error("a broken certificate file replaced the one served")
	}
	dialWSS(t, b, ca.client("", "")).Conn.Close()
}

// TestTLSReloadOnSIGHUP: with --ssl-reload-check=0 new files are served
// only after SIGHUP; a symlink swap (as certbot's live/ directory does)
// counts as new files.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	ca := newTestCA(t, "test")
	dir := t.TempDir()
	c1, k1, sum1 := ca.issue("one", false, "127.0.0.1")
	c2, k2, sum2 := ca.issue("two", false, "127.0.0.1")
	link := func(target, name string) {
		if err := os.Symlink(target, name+".tmp"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name+".tmp", name); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	link(c1, cert)
	link(k1, key)
	b := startBridge(t, "--ssl", "--sslcert="+cert, "--sslkey="+key, "--ssl-reload-check=0", childBin, "echo")
	if servedCert(t, b.Addr) != sum1 {
		t.Fatal("not serving the first certificate")
	}
	link(k2, key)
	link(c2, cert)
	time.Sleep(500 * time.Millisecond)
	if servedCert(t, b.Addr) != sum1 {
		t.Fatal("reloaded without SIGHUP under --ssl-reload-check=0")
	}
	b.Signal(syscall.SIGHUP)
	if !waitServed(t, b, sum2, 10*time.Second) {
		t.Fatalf("SIGHUP did not reload the certificate:\n%s", b.Log)
	}
	echoesAfter(t, dialWSS(t, b, ca.client("", "")), "after SIGHUP")
}

// TestTLSClientCertificates: with --sslca every client must show a
// certificate of that CA; one without, or of another CA, is refused in
// the handshake, and the log says so.
func TestTLSClientCertificates(t *testing.T) {
	ca, other := newTestCA(t, "clients"), newTestCA(t, "other")
	cert, key, _ := ca.issue("server", false, "127.0.0.1")
	b := startBridge(t, "--ssl", "--sslcert="+cert, "--sslkey="+key, "--sslca="+ca.File, childBin, "echo")

	goodCert, goodKey, _ := ca.issue("alice", true)
	c := dialWSS(t, b, ca.client(goodCert, goodKey))
	echoesAfter(t, c, "with a certificate")
	c.Conn.Close()

	badCert, badKey, _ := other.issue("mallory", true)
	for name, cfg := range map[string]*tls.Config{
		"no certificate":         ca.client("", ""),
		"another CA's":           ca.client(badCert, badKey),
		"the server's own chain": ca.client(cert, key),
	} {
		if c, err := wstest.Dial(b.Addr, wstest.Options{TLS: cfg, Timeout: 5 * time.Second}); err == nil {
			c.Conn.Close()
			t.Errorf("%s: the session opened; want the handshake refused", name)
		}
	}
	if !b.Log.WaitFor("TLS handshake failed", 5*time.Second) {
		t.Errorf("refused client certificates are not logged:\n%s", b.Log)
	}
}

// TestTLSSelfSigned: --ssl-self-signed makes a pair on first start (the
// key 0600), logs its fingerprint, serves it, and keeps it on the next
// start; half a pair is refused rather than overwritten.
func TestTLSSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	if err := os.Mkdir(filepath.Dir(cert), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--ssl", "--ssl-self-signed", "--ssl-name=board.local", "--sslcert=" + cert, "--sslkey=" + key, childBin, "echo"}
	b := startBridge(t, args...)
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key %v %v, want mode 0600", fi, err)
	}
	sum := servedCert(t, b.Addr)
	if !b.Log.WaitFor("made a self-signed TLS certificate", 5*time.Second) || !strings.Contains(b.Log.String(), "fingerprint="+fp(sum)) {
		t.Errorf("the log does not give the new certificate's fingerprint %s:\n%s", fp(sum), b.Log)
	}
	conn, err := tls.Dial("tcp", b.Addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	names := conn.ConnectionState().PeerCertificates[0].DNSNames
	conn.Close()
	if !strings.Contains(strings.Join(names, " "), "board.local") || !strings.Contains(strings.Join(names, " "), "localhost") {
		t.Errorf("certificate names %v, want board.local and localhost among them", names)
	}
	b.Stop()

	b = startBridge(t, args...)
	if servedCert(t, b.Addr) != sum {
		t.Error("a second start made a new certificate over the first")
	}
	if strings.Contains(b.Log.String(), "made a self-signed") {
		t.Error("a second start says it made a certificate")
	}
	b.Stop()

	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bridgeBin, args...).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), key) {
		t.Errorf("half a pair: exit %d, %s; want exit 2 naming %s", code, out, key)
	}
	if _, err := os.Stat(key); err == nil {
		t.Error("a key was made beside a certificate it is not for")
	}
}

// TestTLSStartErrors: a certificate or key that is missing, unreadable,
// not PEM or not each other's stops the start with exit 2 and a message
// naming the file; TLS flags without --ssl say to add it.
func TestTLSStartErrors(t *testing.T) {
	ca := newTestCA(t, "test")
	cert, key, _ := ca.issue("server", false, "127.0.0.1")
	otherCert, _, _ := ca.issue("other", false, "127.0.0.1")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing certificate", []string{"--ssl", "--sslcert=" + missing, "--sslkey=" + key}, "--sslcert: the certificate: open " + missing},
		{"not a certificate", []string{"--ssl", "--sslcert=" + garbage, "--sslkey=" + key}, "--sslcert: " + garbage + ": not PEM"},
		{"the key as the certificate", []string{"--ssl", "--sslcert=" + key, "--sslkey=" + key}, "--sslcert: " + key + " and " + key + ": no CERTIFICATE block"},
		{"another certificate's key", []string{"--ssl", "--sslcert=" + otherCert, "--sslkey=" + key}, "--sslkey: " + otherCert + " and " + key + ": the key is not the certificate's"},
		{"missing CA", []string{"--ssl", "--sslcert=" + cert, "--sslkey=" + key, "--sslca=" + missing}, "--sslca: the CA bundle: open " + missing},
		{"no key", []string{"--ssl", "--sslcert=" + cert}, "--ssl needs --sslcert=FILE and --sslkey=FILE"},
		{"without --ssl", []string{"--sslcert=" + cert}, "add --ssl"},
		{"redirport without --ssl", []string{"--redirport=8081"}, "add --ssl"},
		{"redirport is the port", []string{"--ssl", "--sslcert=" + cert, "--sslkey=" + key, "--port=8443", "--redirport=8443"}, "is --port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bridgeBin, append(tc.args, childBin, "echo")...).CombinedOutput()
			if code := exitCode(err); code != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit %d, %q; want exit 2 and %q", code, out, tc.want)
			}
		})
	}
	if os.Geteuid() != 0 { // root reads any file
		out, err := exec.Command(bridgeBin, "--ssl", "--sslcert="+unreadable, "--sslkey="+key, childBin, "echo").CombinedOutput()
		if code := exitCode(err); code != 2 || !strings.Contains(string(out), "permission denied") {
			t.Errorf("unreadable certificate: exit %d, %q", code, out)
		}
	}
}

// TestRedirPort: plain HTTP on --redirport is sent to https on --port,
// the path and query kept: 301 for GET, 308 for a POST (sent again as
// it was), and following it reaches the TLS port.
func TestRedirPort(t *testing.T) {
	ca := newTestCA(t, "test")
	cert, key, _ := ca.issue("server", false, "127.0.0.1", "localhost")
	redir := freePort(t)
	b := startBridge(t, "--ssl", "--sslcert="+cert, "--sslkey="+key, fmt.Sprintf("--redirport=%d", redir), childBin, "echo")
	_, tlsPort, _ := net.SplitHostPort(b.Addr)
	from := fmt.Sprintf("http://localhost:%d", redir)
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var resp *http.Response
	var err error
	for range 50 { // the redirect port opens just after the TLS one
		if resp, err = noFollow.Get(from + "/a/b?c=d"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "https://localhost:" + tlsPort + "/a/b?c=d"
	if resp.StatusCode != 301 || resp.Header.Get("Location") != want {
		t.Errorf("GET: %s Location %q, want 301 to %s", resp.Status, resp.Header.Get("Location"), want)
	}
	resp, err = noFollow.Post(from+"/form", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 308 || resp.Header.Get("Location") != "https://localhost:"+tlsPort+"/form" {
		t.Errorf("POST: %s Location %q, want 308", resp.Status, resp.Header.Get("Location"))
	}
	follow := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	resp, err = follow.Get(from + "/page")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 == 3 || resp.Request.URL.Scheme != "https" {
		t.Errorf("following the redirect: %s %q at %s", resp.Status, body, resp.Request.URL)
	}
}

// exitCode is a finished command's exit status: 0 for none, -1 when it
// did not run or was killed.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
