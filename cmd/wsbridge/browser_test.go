package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// dumpDOM loads url in headless Chromium, lets the page run for a few
// seconds of virtual time and returns the resulting DOM.
func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	return dumpDOMEnv(t, chromium, nil, url)
}

// dumpDOMEnv is dumpDOM with env added to the browser's environment
// (HOME, for the NSS database of the CAs it trusts).
func dumpDOMEnv(t *testing.T, chromium string, env []string, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", url)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	return string(out)
}

// dumpDOMShowing is dumpDOM until the DOM has every one of wants, up to
// tries runs. --virtual-time-budget fast-forwards a page that waits on a
// WebSocket: on a loaded machine the dump can come before the program's
// lines do (a cold CI run saw 2 of the env lines). Each run is a new
// browser against the same bridge; the last DOM is returned either way.
func dumpDOMShowing(t *testing.T, chromium, url string, tries int, wants ...string) string {
	t.Helper()
	return dumpDOMShowingEnv(t, chromium, nil, url, tries, wants...)
}

// dumpDOMShowingEnv is dumpDOMShowing with env added to the browser's.
func dumpDOMShowingEnv(t *testing.T, chromium string, env []string, url string, tries int, wants ...string) string {
	t.Helper()
	var dom string
	for i := 1; i <= tries; i++ {
		dom = dumpDOMEnv(t, chromium, env, url)
		missing := ""
		for _, w := range wants {
			if !strings.Contains(dom, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return dom
		}
		t.Logf("run %d of %d: the DOM of %s does not show %q yet", i, tries, url, missing)
	}
	return dom
}

// TestBrowser drives the demo page in a real browser: served by the bridge
// it connects and shows what the program says; the same page served from
// another origin is refused, as the default origin policy promises.
func TestBrowser(t *testing.T) {
	chromium := needTool(t, "/usr/bin/chromium", "apt-get install -y chromium")
	b := startBridge(t, "--demo", childBin, "exit", "0", "hello from the child")

	dom := dumpDOMShowing(t, chromium, "http://"+b.Addr+"/", 3, "hello from the child", "closed with code 1000")
	if !strings.Contains(dom, "hello from the child") {
		t.Errorf("demo page did not show the child's line; DOM:\n%.2000s", dom)
	}
	if !strings.Contains(dom, "closed with code 1000") {
		t.Errorf("demo page did not show the close 1000 after the child exited; DOM:\n%.2000s", dom)
	}

	// The same page from another origin: a second port on loopback.
	page := dumpDOMFromOtherOrigin(t, chromium, b)
	if strings.Contains(page, "hello from the child") || !strings.Contains(page, "closed with code 1006") {
		t.Errorf("a page from another origin was not refused; DOM:\n%.2000s", page)
	}
	if !b.Log.WaitFor("refused: origin", 5*time.Second) || !strings.Contains(b.Log.String(), "--origin=") {
		t.Errorf("no log line naming --origin for the refused page")
	}
}

// dumpDOMFromOtherOrigin serves the bridge's demo page from another port,
// pointed at the bridge, and loads it.
func dumpDOMFromOtherOrigin(t *testing.T, chromium string, b *bridgeProc) string {
	t.Helper()
	resp, err := http.Get("http://" + b.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	html := strings.Replace(string(body), `location.host + location.pathname`, `"`+b.Addr+`/"`, 1)
	if html == string(body) {
		t.Fatal("the demo page no longer builds its URL from location.host + location.pathname; update this test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(html))
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	return dumpDOM(t, chromium, "http://"+l.Addr().String()+"/")
}

// TestDevConsole drives --devconsole's page in a real browser: it connects
// to the path it was served at, with its query, and shows what the program
// prints as text, never as markup: websocketd's console let a program's
// output run script in the page.
func TestDevConsole(t *testing.T) {
	chromium := needTool(t, "/usr/bin/chromium", "apt-get install -y chromium")
	const xss = `<img src=x onerror="document.title='pwned'">` + "\n" + `<b>bold</b>` + "\n"
	conf := testConfig(t, fmt.Sprintf("devconsole = yes\n\n[endpoint /xss]\ncommand = %s bytes %s\n\n[endpoint /env]\ncommand = %s env\n",
		childBin, hex.EncodeToString([]byte(xss)), childBin))
	b := startBridge(t, "--config="+conf)

	xssWants := []string{
		`&lt;img src=x onerror="document.title='pwned'"&gt;`, // the text, escaped by the serializer
		`&lt;b&gt;bold&lt;/b&gt;`,
		"<title>wsbridge console</title>",
		"close 1000",
		"ws://" + b.Addr + "/xss",
	}
	// Up to three runs, as for the env page below: on a busy machine the
	// browser may dump the page before the program's lines came.
	dom := dumpDOMShowing(t, chromium, "http://"+b.Addr+"/xss", 3, xssWants...)
	for _, want := range xssWants {
		if !strings.Contains(dom, want) {
			t.Errorf("the console does not show %q; DOM:\n%.3000s", want, dom)
		}
	}
	for _, bad := range []string{"<img", "<b>", "pwned</title>"} {
		if strings.Contains(dom, bad) {
			t.Errorf("the program's output became markup (%q in the DOM):\n%.3000s", bad, dom)
		}
	}

	envWants := []string{"SCRIPT_NAME=/env", "PATH_INFO=/room", "QUERY_STRING=a=1&amp;b=two", "← text", "open"}
	dom = dumpDOMShowing(t, chromium, "http://"+b.Addr+"/env/room?a=1&b=two", 3, envWants...)
	for _, want := range envWants {
		if !strings.Contains(dom, want) {
			t.Errorf("the console at /env/room?a=1&b=two does not show %q; DOM:\n%.3000s", want, dom)
		}
	}
}
