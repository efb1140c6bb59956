package main

import (
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge"
)

func TestSplitCommand(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string // nil: an error containing err
		err      string
	}{
		{"words", "/usr/bin/prog arg1 arg2", []string{"/usr/bin/prog", "arg1", "arg2"}, ""},
		{"blanks and tabs", "prog \t  a\tb", []string{"prog", "a", "b"}, ""},
		{"double quotes", `prog "arg 2" x`, []string{"prog", "arg 2", "x"}, ""},
		{"single quotes keep everything", `prog 'a \"b\" $c'`, []string{"prog", `a \"b\" $c`}, ""},
		{"escapes in double quotes", `prog "a\"b\\c\$d\` + "`" + `e\n"`, []string{"prog", `a"b\c$d` + "`" + `e\n`}, ""},
		{"backslash outside quotes", `prog a\ b \'c\'`, []string{"prog", "a b", "'c'"}, ""},
		{"quotes join a word", `prog a'b c'"d e"f`, []string{"prog", "ab cd ef"}, ""},
		{"empty words", `prog '' ""`, []string{"prog", "", ""}, ""},
		{"nothing is expanded", `prog $HOME ~ *.sh a;b | c # d`, []string{"prog", "$HOME", "~", "*.sh", "a;b", "|", "c", "#", "d"}, ""},
		{"unclosed single quote", `prog 'abc`, nil, "' at column 6 is never closed"},
		{"unclosed double quote", `prog "abc\"`, nil, `" at column 6 is never closed`},
		{"trailing backslash", `prog a\`, nil, "backslash at the end"},
		{"empty", ``, nil, "no program"},
		{"empty program", `'' a`, nil, "no program"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitCommand(tc.in)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("splitCommand(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("splitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			// The same words as a real shell, where it would not expand
			// anything.
			if strings.ContainsAny(tc.in, "$~;|#*`") {
				return
			}
			out, err := exec.Command("/bin/sh", "-c", `set -f; for w in `+tc.in+`; do printf '%s\0' "$w"; done`).Output()
			if err != nil {
				t.Fatalf("/bin/sh: %v", err)
			}
			if words := strings.Split(string(out), "\x00"); !slices.Equal(words[:len(words)-1], tc.want) {
				t.Errorf("/bin/sh splits %q into %q", tc.in, words[:len(words)-1])
			}
		})
	}
}

// quoteCommand is splitCommand's inverse: words a shell (and splitCommand)
// splits back into args.
func quoteCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{`prog "a b" 'c d' e\ f`, `a''b`, `"\\\"'"`, `x "$y"`, "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitCommand(s)
		if err != nil {
			return
		}
		again, err := splitCommand(quoteCommand(words))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q: split %q, quoted %q, split again %q, %v", s, words, quoteCommand(words), again, err)
		}
	})
}

// testConfig writes a config file into a fresh directory and returns its
// path.
func testConfig(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wsbridge.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	scripts := t.TempDir()
	cases := []struct {
		name, text string
		check      func(t *testing.T, fc fileConfig)
		err        string // a wanted error: "LINE: text"
	}{
		{"two endpoints", `
# a comment
; another
port = 9000
address = 127.0.0.1
address = ::1
origin = app.example
header = X-A: 1 # not a comment
devconsole = yes
ping-interval = 30s

[endpoint /chat]
command = ` + childBin + ` echo "a b"
framing = len32
shared = lazy
queue = 64KiB
on-restart = keep
drop-slow = on

[endpoint /scripts/]
dir = ` + scripts + `
max-message = 0
passenv = PATH, HOME

[endpoint]
command = cat
cgi-per-message = true
cgi-timeout = 2s
cgi-max-output = 1M
closems = 250
workdir = /tmp
binary = no
`, func(t *testing.T, fc fileConfig) {
			want := []bridge.Endpoint{
				{Path: "/chat", Command: []string{childBin, "echo", "a b"}, Framing: "len32", Mode: bridge.ModeShared,
					PassEnv: []string{"PATH", "LD_LIBRARY_PATH"}, MaxMessage: 1 << 20,
					Shared: bridge.SharedOptions{Lazy: true, KeepClients: true, Queue: 64 << 10, DropSlow: true},
					CGI:    bridge.CGIOptions{PerConn: 4, Total: 64, Timeout: 30 * time.Second, MaxOut: 1 << 20}},
				{Path: "/scripts/", ScriptDir: scripts, PassEnv: []string{"PATH", "HOME"}, MaxMessage: -1,
					Shared: bridge.SharedOptions{Queue: 256 << 10},
					CGI:    bridge.CGIOptions{PerConn: 4, Total: 64, Timeout: 30 * time.Second, MaxOut: 1 << 20}},
				{Command: []string{"cat"}, Dir: "/tmp", Mode: bridge.ModeCGI, PassEnv: []string{"PATH", "LD_LIBRARY_PATH"},
					MaxMessage: 1 << 20, CloseGrace: 250 * time.Millisecond, Shared: bridge.SharedOptions{Queue: 256 << 10},
					CGI: bridge.CGIOptions{PerConn: 4, Total: 64, Timeout: 2 * time.Second, MaxOut: 1 << 20}},
			}
			if !reflect.DeepEqual(fc.endpoints, want) {
				t.Errorf("endpoints\n%+v\nwant\n%+v", fc.endpoints, want)
			}
			if fc.catchAll != 25 {
				t.Errorf("catch-all at line %d, want 25", fc.catchAll)
			}
			for key, want := range map[string]string{
				"port": "9000", "address": "127.0.0.1,::1", "origin": "app.example",
				"header": "X-A: 1 # not a comment", "devconsole": "true", "ping-interval": "30s", "demo": "false",
			} {
				if got := fc.daemonFS.Lookup(key).Value.String(); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
		}, ""},
		{"empty file", "", func(t *testing.T, fc fileConfig) {
			if len(fc.endpoints) != 0 || fc.catchAll != 0 {
				t.Errorf("endpoints %v, catch-all %d", fc.endpoints, fc.catchAll)
			}
		}, ""},
		{"CRLF and a BOM", "\xef\xbb\xbfport = 1\r\n[endpoint]\r\ncommand = cat\r\n", func(t *testing.T, fc fileConfig) {
			if len(fc.endpoints) != 1 || fc.endpoints[0].Command[0] != "cat" {
				t.Errorf("endpoints %v", fc.endpoints)
			}
		}, ""},
		{"booleans", "demo = ON\nsameorigin = 1\ndevconsole = False\n", func(t *testing.T, fc fileConfig) {
			for key, want := range map[string]string{"demo": "true", "sameorigin": "true", "devconsole": "false"} {
				if got := fc.daemonFS.Lookup(key).Value.String(); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
		}, ""},

		{"unknown key", "port = 1\nprot = 2\n", nil, `2: unknown key "prot" at the top of the file`},
		{"unknown key in a section", "[endpoint]\ncommand = cat\nframin = line\n", nil, `3: unknown key "framin" in [endpoint]`},
		{"command line only", "version = yes\n", nil, `1: unknown key "version"`},
		{"not yet", "cgidir = /tmp\n", nil, "1: cgidir: websocketd flag not supported"},
		{"endpoint key at the top", "framing = raw\n", nil, "1: framing at the top of the file: framing is a per-endpoint key"},
		{"daemon key in a section", "[endpoint]\ncommand = cat\nport = 1\n", nil, "3: port in [endpoint]: port is a key of the whole daemon"},
		{"command at the top", "command = cat\n", nil, `1: unknown key "command" at the top`},
		{"unknown section", "[server]\n", nil, "1: unknown section [server]"},
		{"section with two paths", "[endpoint /a /b]\n", nil, "1: unknown section"},
		{"unclosed section", "[endpoint /a\n", nil, "1: section header \"[endpoint /a\" has no closing ]"},
		{"relative path", "[endpoint chat]\n", nil, "1: [endpoint chat]: the path must start with /"},
		{"section twice", "[endpoint /a]\ncommand = cat\n[endpoint /a/]\ncommand = cat\n", nil, "3: [endpoint /a/] again: it is already at line 1"},
		{"catch-all twice", "[endpoint]\ncommand = cat\n\n[endpoint]\ncommand = cat\n", nil, "4: [endpoint] again"},
		{"no equals", "port 8080\n", nil, `1: want key = value`},
		{"no key", "= 8080\n", nil, `1: want key = value`},
		{"NUL", "port = 1\x00\n", nil, "1: NUL byte"},
		{"key twice", "port = 1\n\nport = 2\n", nil, "3: port set again: it is already set at line 1"},
		{"bad number", "maxforks = many\n", nil, "1: maxforks = many: want a whole number"},
		{"bad duration", "ping-timeout = 10\n", nil, "1: ping-timeout = 10: want a duration"},
		{"bad boolean", "demo = maybe\n", nil, "1: demo = maybe: want yes or no"},
		{"bad shared", "[endpoint]\ncommand = cat\nshared = maybe\n", nil, "3: shared = maybe: want yes, no or lazy"},
		{"bad size", "[endpoint]\ncommand = cat\nmax-message = lots\n", nil, `3: max-message = lots: "lots" is not a size`},
		{"bad port number", "port = http\n", nil, "1: port = http: not a port number: want 0 to 65535"},
		{"closems out of range", "[endpoint]\ncommand = cat\nclosems = 18446744073710\n", nil, "3: --closems=18446744073710: want 0 to 3600000"},
		{"missing workdir", "[endpoint]\ncommand = cat\nworkdir = /no/such/dir\n", nil, "3: --workdir=/no/such/dir: no such directory"},
		{"malformed address", "address = 256.1.1.1\n", nil, "1: --address=256.1.1.1: not an IPv4 address"},
		{"unknown key suggested", "[endpoint]\ncommand = cat\nframin = raw\n", nil, `3: unknown key "framin" in [endpoint]: did you mean framing?`},
		{"bad port", "\nport = 70000\n", nil, "2: --port=70000: want 0 to 65535"},
		{"bad header", "header = X-A: 1\nheader = nocolon\n", nil, "2: --header: header \"nocolon\""},
		{"bad log level", "loglevel = loud\n", nil, `1: --loglevel: unknown log level "loud"`},
		{"negative timeout", "handshake-timeout = -1s\n", nil, "1: --handshake-timeout must be > 0"},
		{"no command", "[endpoint /a]\nframing = raw\n", nil, "1: [endpoint /a] has neither command"},
		{"command and dir", "[endpoint /a]\ncommand = cat\ndir = /tmp\n", nil, "1: [endpoint /a] has both command and dir"},
		{"bad quoting", "[endpoint /a]\n\ncommand = cat 'x\n", nil, "3: command: the ' at column 5 is never closed"},
		{"empty command", "[endpoint /a]\ncommand =\n", nil, "1: [endpoint /a] has neither command"},
		{"binary and framing", "[endpoint]\ncommand = cat\nframing = len32\nbinary = yes\n", nil, "3: --binary means --framing=raw"},
		{"two modes", "[endpoint]\ncommand = cat\nshared = yes\ncgi-per-message = yes\n", nil, "4: --shared and --cgi-per-message"},
		{"bad on-restart", "[endpoint]\ncommand = cat\non-restart = later\n", nil, "3: --on-restart=later"},
		{"small queue", "[endpoint]\ncommand = cat\nqueue = 10\n", nil, "3: --queue=10"},
		{"zero cgi timeout", "[endpoint]\ncommand = cat\ncgi-timeout = 0s\n", nil, "3: --cgi-timeout must be > 0"},
		{"bad framing", "[endpoint /x]\ncommand = cat\nframing = morse\n", nil, "3: --framing=morse: want line, raw, len32 or mux"},
		{"mux without shared", "[endpoint /x]\ncommand = cat\nframing = mux\n", nil, "3: --framing=mux: mux addresses the clients of one shared program: add --shared"},
		{"missing program", "[endpoint /x]\ncommand = /no/such/program --flag\n", nil, `2: [endpoint /x]: cannot run the program "/no/such/program": no such file or directory`},
		{"program not in PATH", "[endpoint /x]\ncommand = no-such-program-wsbridge\n", nil, "2: [endpoint /x]: cannot run the program"},
		{"program not executable", "[endpoint /x]\ncommand = /etc/passwd\n", nil, "2: [endpoint /x]: cannot run the program"},
		{"missing dir", "[endpoint /x]\ndir = /no/such/dir\n", nil, "2: --dir=/no/such/dir: no such directory"},
		{"dir and workdir", "[endpoint /x]\ndir = /tmp\nworkdir = /\n", nil, "1: endpoint /x: a working directory and a script directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc, err := loadConfig("test.conf", []byte(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), "test.conf:"+tc.err) {
					t.Fatalf("loadConfig: %v, want an error with %q", err, "test.conf:"+tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			tc.check(t, fc)
		})
	}
}

// TestConfigWithFlags checks how the command line and a config file
// combine.
func TestConfigWithFlags(t *testing.T) {
	conf := testConfig(t, "port = 9000\naddress = 127.0.0.1\nloglevel = info\n\n[endpoint /a]\ncommand = "+childBin+" echo\nframing = len32\n")
	withCatchAll := testConfig(t, "[endpoint]\ncommand = cat\n")
	empty := testConfig(t, "# nothing\n")
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, c config)
		err   string
	}{
		{"file alone", []string{"--config=" + conf}, func(t *testing.T, c config) {
			if c.port != 9000 || !slices.Equal(c.addresses, []string{"127.0.0.1"}) || c.logLevel != "info" {
				t.Errorf("port %d addresses %q loglevel %q", c.port, c.addresses, c.logLevel)
			}
			if len(c.bridge.Endpoints) != 1 || c.bridge.Endpoints[0].Path != "/a" || c.bridge.Endpoints[0].Framing != "len32" {
				t.Errorf("endpoints %+v", c.bridge.Endpoints)
			}
		}, ""},
		{"same value twice is fine", []string{"--port=9000", "--address=127.0.0.1", "--config=" + conf}, func(t *testing.T, c config) {
			if c.port != 9000 || len(c.addresses) != 1 {
				t.Errorf("port %d addresses %q", c.port, c.addresses)
			}
		}, ""},
		{"flags the file does not set", []string{"--maxforks=3", "--config=" + conf}, func(t *testing.T, c config) {
			if c.bridge.MaxForks != 3 || c.port != 9000 {
				t.Errorf("maxforks %d port %d", c.bridge.MaxForks, c.port)
			}
		}, ""},
		{"COMMAND adds the catch-all", []string{"--config=" + conf, "--framing=raw", "--closems=5", "cat", "-u"}, func(t *testing.T, c config) {
			eps := c.bridge.Endpoints
			if len(eps) != 2 || eps[1].Path != "" || !slices.Equal(eps[1].Command, []string{"cat", "-u"}) ||
				eps[1].Framing != "raw" || eps[1].CloseGrace != 5*time.Millisecond || eps[0].Framing != "len32" {
				t.Errorf("endpoints %+v", eps)
			}
		}, ""},
		{"--dir adds the catch-all", []string{"--config=" + conf, "--dir=" + t.TempDir()}, func(t *testing.T, c config) {
			if eps := c.bridge.Endpoints; len(eps) != 2 || eps[1].ScriptDir == "" || eps[1].Path != "" {
				t.Errorf("endpoints %+v", eps)
			}
		}, ""},
		{"--dir alone", []string{"--dir=" + t.TempDir(), "--staticdir=" + t.TempDir(), "--devconsole"}, func(t *testing.T, c config) {
			if eps := c.bridge.Endpoints; len(eps) != 1 || eps[0].ScriptDir == "" || c.bridge.StaticDir == "" || !c.bridge.DevConsole {
				t.Errorf("options %+v", c.bridge)
			}
		}, ""},

		{"flag and file disagree", []string{"--port=8000", "--config=" + conf}, nil, "--port=8000 on the command line, but port = 9000 at " + conf + ":1: remove one"},
		{"repeated flag and file disagree", []string{"--address=::1", "--config=" + conf}, nil, "--address=::1 on the command line, but address = 127.0.0.1 at " + conf + ":2"},
		{"two catch-alls", []string{"--config=" + withCatchAll, "cat"}, nil, "[endpoint] at " + withCatchAll + ":1 both serve every path"},
		{"endpoint flags without COMMAND", []string{"--config=" + conf, "--framing=raw", "--binary"}, nil, "--binary, --framing: these flags apply to the COMMAND of the command line, and there is none"},
		{"nothing to serve", []string{"--config=" + empty}, nil, "has no [endpoint] section and the command line no COMMAND"},
		{"missing file", []string{"--config=/no/such.conf"}, nil, "--config: open /no/such.conf: no such file or directory"},
		{"error in the file", []string{"--config=" + testConfig(t, "port = x\n")}, nil, ":1: port = x: not a port number: want 0 to 65535"},
		{"--dir and COMMAND", []string{"--dir=/tmp", "cat"}, nil, "--dir=/tmp and a COMMAND (cat): give one"},
		{"no program", nil, nil, "no program given"},
		{"missing program", []string{"/no/such/program"}, nil, `cannot run the program "/no/such/program": no such file or directory`},
		{"missing dir", []string{"--dir=/no/such/dir"}, nil, "--dir=/no/such/dir: no such directory"},
		{"missing staticdir", []string{"--staticdir=/no/such/dir", "cat"}, nil, "--staticdir=/no/such/dir: no such directory"},
		{"not yet", []string{"--cgidir=/tmp", "cat"}, nil, "--cgidir: websocketd flag not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseFlags: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			tc.check(t, c)
		})
	}
}

// The flags' defaults and the file's are the same code: a file that sets
// nothing gives the options the bare command line gives.
func TestConfigDefaultsMatchFlags(t *testing.T) {
	fromFlags, err := parseFlags([]string{"cat"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := parseFlags([]string{"--config=" + testConfig(t, "[endpoint]\ncommand = cat\n")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFlags, fromFile) {
		t.Fatalf("flags give\n%+v\nthe file gives\n%+v", fromFlags, fromFile)
	}
}

var lineNumber = regexp.MustCompile(`^fuzz\.conf:([0-9]+): `)

func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"port = 8080\naddress = 127.0.0.1\n[endpoint /a]\ncommand = cat 'a b'\nframing = len32\n",
		"# c\n; c\n\n[endpoint]\ncommand = cat\nshared = lazy\nqueue = 1MiB\n",
		"[endpoint /x]\ndir = /tmp\n[endpoint /y]\ncommand = cat\ncgi-per-message = yes\n",
		"header = X-A: 1\nheader-ws = X-B: 2\ndevconsole = on\nping-interval = 1m\n",
		"[endpoint /a]\ncommand = \"unclosed\n", "[x]\n", "a=b=c\n", "=\n", "[endpoint /a]\n[endpoint /a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fc, err := loadConfig("fuzz.conf", data)
		if err != nil {
			m := lineNumber.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error without a line number: %v", err)
			}
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > strings.Count(string(data), "\n")+1 {
				t.Fatalf("error at line %d of a %d-line file: %v", n, strings.Count(string(data), "\n")+1, err)
			}
			return
		}
		// Formatted back, it says the same.
		ini, err := parseINI("fuzz.conf", data)
		if err != nil {
			t.Fatalf("loadConfig took what parseINI refuses: %v", err)
		}
		again, err := loadConfig("fuzz.conf", ini.format())
		if err != nil {
			t.Fatalf("formatted back, it fails: %v\n%s", err, ini.format())
		}
		if !reflect.DeepEqual(fc.endpoints, again.endpoints) || (fc.catchAll == 0) != (again.catchAll == 0) {
			t.Fatalf("formatted back, endpoints\n%+v\nbecome\n%+v", fc.endpoints, again.endpoints)
		}
		fc.daemonFS.VisitAll(func(fl *flag.Flag) {
			if b := again.daemonFS.Lookup(fl.Name).Value.String(); fl.Value.String() != b {
				t.Fatalf("formatted back, %s = %q becomes %q", fl.Name, fl.Value.String(), b)
			}
		})
	})
}

// The README's example config file is one wsbridge takes, once its
// programs and directories are ones this machine has.
func TestREADMEConfig(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(readme), "```ini\n")
	example, _, ok2 := strings.Cut(example, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```ini block")
	}
	example = regexp.MustCompile(`(?m)^command = \S+`).ReplaceAllLiteralString(example, "command = "+childBin)
	example = regexp.MustCompile(`(?m)^((static)?dir) = .*$`).ReplaceAllString(example, "$1 = "+t.TempDir())
	fc, err := loadConfig("README.md", []byte(example))
	if err != nil {
		t.Fatalf("the README's example: %v\n%s", err, example)
	}
	if len(fc.endpoints) != 4 || fc.catchAll == 0 {
		t.Errorf("the README's example has %d endpoints (catch-all at line %d), want 4 with a catch-all", len(fc.endpoints), fc.catchAll)
	}
}
