package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// trustingHome returns a home directory whose NSS database, the one
// Chromium on Linux reads ($HOME/.pki/nssdb), trusts ca for servers.
func trustingHome(t *testing.T, ca *testCA) string {
	t.Helper()
	certutil := needTool(t, "/usr/bin/certutil", "apt-get install -y libnss3-tools")
	home := t.TempDir()
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + db, "--empty-password"},
		{"-A", "-d", "sql:" + db, "-n", "wsbridge test CA", "-t", "C,,", "-i", ca.File},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	return home
}

// TestBrowserWSS: headless Chromium, trusting a test CA and nothing else
// more, loads the demo page from wsbridge --ssl over https and talks to
// the program over wss://: the page's own origin, no certificate error.
// Without the CA in its database the same page does not load: the
// browser checks the certificate, so the first run means something.
func TestBrowserWSS(t *testing.T) {
	chromium := needTool(t, "/usr/bin/chromium", "apt-get install -y chromium")
	ca := newTestCA(t, "browser")
	cert, key, _ := ca.issue("server", false, "127.0.0.1")
	b := startBridge(t, "--ssl", "--sslcert="+cert, "--sslkey="+key, "--demo", childBin, "exit", "0", "hello over wss")
	url := "https://" + b.Addr + "/"

	home := trustingHome(t, ca)
	dom := dumpDOMShowingEnv(t, chromium, []string{"HOME=" + home}, url, 3, "hello over wss", "closed with code 1000")
	if !strings.Contains(dom, "hello over wss") || !strings.Contains(dom, "closed with code 1000") {
		t.Errorf("the demo page over https did not show the program's line and the close; DOM:\n%.2000s", dom)
	}

	before := strings.Count(b.Log.String(), "TLS handshake failed")
	dom = dumpDOMEnv(t, chromium, []string{"HOME=" + t.TempDir()}, url)
	if strings.Contains(dom, "hello over wss") {
		t.Errorf("a browser that does not trust the CA loaded the page; DOM:\n%.2000s", dom)
	}
	if strings.Count(b.Log.String(), "TLS handshake failed") <= before {
		t.Errorf("the untrusting browser's refused handshake is not in the log:\n%s", b.Log)
	}
}

// TestBrowserWSSThroughHAProxy: the same browser, with TLS ended at
// HAProxy (haproxy/https.cfg) in front of a plain wsbridge that trusts
// it: the demo page over https through the www backend, its wss session
// through the socket backend, same-origin by the forwarded scheme.
func TestBrowserWSSThroughHAProxy(t *testing.T) {
	chromium := needTool(t, "/usr/bin/chromium", "apt-get install -y chromium")
	ca := newTestCA(t, "haproxy")
	pemFile := ca.issueHAProxy("server", "127.0.0.1")
	b := startBridge(t, "--trusted-proxy=127.0.0.1/32", "--demo", childBin, "exit", "0", "hello through haproxy")
	h := startHAProxy(t, "haproxy/https.cfg",
		"bind :443 ssl crt /etc/haproxy/certs/wsbridge.pem", "bind 127.0.0.1:{{PORT}} ssl crt "+pemFile,
		"127.0.0.1:8081", b.Addr)

	home := trustingHome(t, ca)
	dom := dumpDOMShowingEnv(t, chromium, []string{"HOME=" + home}, "https://"+h.Addr+"/", 3, "hello through haproxy", "closed with code 1000")
	if !strings.Contains(dom, "hello through haproxy") || !strings.Contains(dom, "closed with code 1000") {
		t.Errorf("the demo page through HAProxy's TLS did not show the program's line and the close; DOM:\n%.2000s", dom)
	}
	h.waitLogLine(t, " public~ socket/ws1 ", " 101 ")
}
