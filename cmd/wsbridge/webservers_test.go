package main

// The real web servers the hand-over tests run beside the daemon: boa
// (built once from the tarball in third_party), lighttpd and BusyBox httpd
// (Debian packages). Each runs in the foreground on a free loopback port
// with its own temp dir, and is stopped by its PID when the test ends.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

const (
	lighttpdPath  = "/usr/sbin/lighttpd"
	busyboxPath   = "/usr/bin/busybox"
	boaTarball    = "boa-0.94.14-gnupg.tar.gz"
	serverInstall = "apt-get install -y lighttpd busybox gcc make bison flex"
)

// webServer is a running web server. Its temp dir Dir holds its config,
// its logs, the docroot Dir/www and the CGI directory Dir/cgi-bin.
type webServer struct {
	Addr string // 127.0.0.1:PORT
	PID  int
	Dir  string

	t    testing.TB
	cmd  *exec.Cmd
	out  *wstest.Buffer // its stdout and stderr
	done chan struct{}
}

// Log is the server's error log so far (Dir/error.log, where the configs
// put it), then whatever it wrote to its stdout and stderr.
func (w *webServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(w.Dir, "error.log"))
	return string(b) + w.out.String()
}

// URL is the http:// URL of path on this server.
func (w *webServer) URL(path string) string { return "http://" + w.Addr + path }

// Stop ends the server with SIGTERM, then SIGKILL after 5 s.
func (w *webServer) Stop() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = syscall.Kill(w.PID, syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// thirdPartyDir is where the third-party source tarballs are:
// $WSBRIDGE_THIRD_PARTY, else ../shared/third_party beside the repository,
// else /work/shared/third_party.
func thirdPartyDir() string {
	if d := os.Getenv("WSBRIDGE_THIRD_PARTY"); d != "" {
		return d
	}
	if root, err := filepath.Abs("../.."); err == nil {
		d := filepath.Join(root, "..", "shared", "third_party")
		if _, err := os.Stat(filepath.Join(d, boaTarball)); err == nil {
			return d
		}
	}
	return "/work/shared/third_party"
}

var boaBuild struct {
	once sync.Once
	path string
	err  error
}

// boaBinary builds boa from its tarball the first time (about 15 s on 2
// CPUs) into the test binary's temp dir, which TestMain removes; later
// calls return the same build. A missing tarball skips the test loudly, or
// fails it under CI.
func boaBinary(t testing.TB) string {
	t.Helper()
	tarball := needTool(t, filepath.Join(thirdPartyDir(), boaTarball), "set WSBRIDGE_THIRD_PARTY to the directory holding "+boaTarball)
	for _, tool := range []string{"/usr/bin/gcc", "/usr/bin/make", "/usr/bin/bison", "/usr/bin/flex"} {
		needTool(t, tool, serverInstall)
	}
	boaBuild.once.Do(func() {
		dir := filepath.Join(filepath.Dir(bridgeBin), "boa")
		src := filepath.Join(dir, strings.TrimSuffix(boaTarball, ".tar.gz"))
		for _, step := range [][]string{
			{"mkdir", "-p", dir},
			{"tar", "xzf", tarball, "-C", dir},
			{"sh", "-c", "cd " + src + " && ./configure && make -j2"},
		} {
			out, err := exec.Command(step[0], step[1:]...).CombinedOutput()
			if err != nil {
				boaBuild.err = fmt.Errorf("building boa: %s: %w\n%s", strings.Join(step, " "), err, out)
				return
			}
		}
		boaBuild.path = filepath.Join(src, "src", "boa")
	})
	if boaBuild.err != nil {
		t.Fatal(boaBuild.err)
	}
	return boaBuild.path
}

// startBoa runs boa -d with the config conf, after filling in its
// placeholders (see fillServerConf).
func startBoa(t testing.TB, conf string) *webServer {
	t.Helper()
	bin := boaBinary(t)
	return startWebServer(t, "boa", conf, func(dir string) []string {
		return []string{bin, "-d", "-c", dir, "-f", filepath.Join(dir, "server.conf")}
	})
}

// startLighttpd runs lighttpd -D with the config conf, placeholders filled.
func startLighttpd(t testing.TB, conf string) *webServer {
	t.Helper()
	bin := needTool(t, lighttpdPath, serverInstall)
	return startWebServer(t, "lighttpd", conf, func(dir string) []string {
		return []string{bin, "-D", "-f", filepath.Join(dir, "server.conf")}
	})
}

// startBusyboxHTTPD runs busybox httpd in the foreground on docroot; its
// CGIs are docroot/cgi-bin/*. Its log (-vv) goes to its stderr.
func startBusyboxHTTPD(t testing.TB, docroot string) *webServer {
	t.Helper()
	bin := needTool(t, busyboxPath, serverInstall)
	return startWebServer(t, "busybox httpd", "", func(dir string) []string {
		return []string{bin, "httpd", "-f", "-vv", "-p", "127.0.0.1:" + portOf(dir), "-h", docroot}
	})
}

// portOf reads back the port startWebServer chose for dir.
func portOf(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "port"))
	return string(b)
}

// fillServerConf fills the placeholders a config may use: {{PORT}}, {{DIR}}
// (the server's temp dir), and {{USER}} and {{GROUP}}, the names of the
// test's own user and group (boa's User and Group: as root boa switches to
// them, otherwise it warns and stays who it is).
func fillServerConf(t testing.TB, conf, dir string, port int) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("{{PORT}}", fmt.Sprint(port), "{{DIR}}", dir,
		"{{USER}}", u.Username, "{{GROUP}}", g.Name).Replace(conf)
}

func startWebServer(t testing.TB, name, conf string, argv func(dir string) []string) *webServer {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"www", "cgi-bin"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		if err := os.WriteFile(filepath.Join(dir, "port"), []byte(fmt.Sprint(port)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "server.conf"), []byte(fillServerConf(t, conf, dir, port)), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(filepath.Join(dir, "error.log"))
		args := argv(dir)
		w := &webServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, t: t, out: &wstest.Buffer{}, done: make(chan struct{})}
		w.cmd = exec.Command(args[0], args[1:]...)
		w.cmd.Dir = dir
		w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
		if err := w.cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		w.PID = w.cmd.Process.Pid
		go func() { _ = w.cmd.Wait(); close(w.done) }()
		if w.waitListening(10 * time.Second) {
			t.Cleanup(func() {
				w.Stop()
				if t.Failed() {
					t.Logf("%s %s log:\n%s", name, strings.Join(args[1:], " "), w.Log())
				}
			})
			return w
		}
		w.Stop()
		if attempt < 3 && strings.Contains(strings.ToLower(w.Log()), "address already in use") {
			continue
		}
		t.Fatalf("%s did not start listening on %s:\n%s", name, w.Addr, w.Log())
	}
}

func (w *webServer) waitListening(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-w.done:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", w.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// writeFile writes a file of a server's temp dir (rel: www/index.html,
// cgi-bin/x.cgi) with mode perm.
func (w *webServer) writeFile(rel, content string, perm os.FileMode) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.Dir, rel), []byte(content), perm); err != nil {
		w.t.Fatal(err)
	}
}

// httpGet fetches url and returns the status code and body.
func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// boaTestConf is the smallest boa config the tests start from: loopback,
// logs in the temp dir, CGIs from Dir/cgi-bin under /cgi-bin/.
const boaTestConf = `Port {{PORT}}
Listen 127.0.0.1
User {{USER}}
Group {{GROUP}}
ErrorLog {{DIR}}/error.log
AccessLog {{DIR}}/access.log
DocumentRoot {{DIR}}/www
DirectoryIndex index.html
MimeTypes /dev/null
AddType text/html html
DefaultType text/plain
CGIPath /bin:/usr/bin
ScriptAlias /cgi-bin/ {{DIR}}/cgi-bin/
`

// lighttpdTestConf is the lighttpd counterpart of boaTestConf.
const lighttpdTestConf = `server.port = {{PORT}}
server.bind = "127.0.0.1"
server.document-root = "{{DIR}}/www"
server.errorlog = "{{DIR}}/error.log"
server.modules += ( "mod_alias", "mod_cgi" )
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html" )
alias.url = ( "/cgi-bin/" => "{{DIR}}/cgi-bin/" )
$HTTP["url"] =~ "^/cgi-bin/" {
	cgi.assign = ( "" => "" )
}
`

// envCGI is an ordinary CGI that prints a few of its variables.
const envCGI = `#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "method=$REQUEST_METHOD query=$QUERY_STRING path=$PATH_INFO"
echo "cgi stderr line" >&2
`

func TestWebServerHarness(t *testing.T) {
	check := func(t *testing.T, w *webServer, cgiURL string) {
		t.Helper()
		if code, body := httpGet(t, w.URL("/index.html")); code != 200 || body != "<p>static page</p>\n" {
			t.Errorf("GET /index.html: %d %q, want 200 and the file", code, body)
		}
		code, body := httpGet(t, w.URL(cgiURL+"/extra?a=1"))
		if want := "method=GET query=a=1 path=/extra\n"; code != 200 || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", cgiURL, code, body, want)
		}
	}
	setup := func(w *webServer) {
		w.writeFile("www/index.html", "<p>static page</p>\n", 0o644)
		w.writeFile("cgi-bin/env.cgi", envCGI, 0o755)
	}
	t.Run("Boa", func(t *testing.T) {
		w := startBoa(t, boaTestConf)
		setup(w)
		check(t, w, "/cgi-bin/env.cgi")
		// boa hands a CGI's stderr to its error log: where the hand-over
		// program's complaints land.
		waitLogged(t, w, "cgi stderr line")
	})
	t.Run("Lighttpd", func(t *testing.T) {
		w := startLighttpd(t, lighttpdTestConf)
		setup(w)
		check(t, w, "/cgi-bin/env.cgi")
		waitLogged(t, w, "cgi stderr line")
	})
	t.Run("Busybox", func(t *testing.T) {
		docroot := t.TempDir()
		if err := os.Mkdir(filepath.Join(docroot, "cgi-bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		w := startBusyboxHTTPD(t, docroot)
		for name, content := range map[string]string{"index.html": "<p>static page</p>\n", "cgi-bin/env.cgi": envCGI} {
			if err := os.WriteFile(filepath.Join(docroot, name), []byte(content), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		check(t, w, "/cgi-bin/env.cgi")
	})
}

// waitLogged waits up to 5 s for s in the server's log.
func waitLogged(t testing.TB, w *webServer, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(w.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not in the server's log after 5 s:\n%s", s, w.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
