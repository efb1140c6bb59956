package main

import (
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestFlagErrors runs the real binary with what a new user mistypes: each
// gets exit status 2 before anything starts, and one line saying, in the
// words of the command line, what is wrong and what is wanted.
func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing program", []string{"./no-such-program"}, `cannot run the program "./no-such-program": no such file or directory`},
		{"not executable", []string{"/etc/passwd"}, `cannot run the program "/etc/passwd": permission denied`},
		{"size echoes what was typed", []string{"--max-message=1XB", "cat"}, `--max-message=1XB: "1XB" is not a size in bytes`},
		{"port not a number", []string{"--port=abc", "cat"}, "--port=abc: not a port number: want 0 to 65535"},
		{"port out of range", []string{"--port=99999", "cat"}, "--port=99999: want 0 to 65535"},
		{"mistyped flag", []string{"--prot=8091", "cat"}, "unknown flag --prot: did you mean --port?"},
		{"mistyped long flag", []string{"--max-mesage=1", "cat"}, "unknown flag --max-mesage: did you mean --max-message?"},
		{"unknown flag, nothing close", []string{"--zzzzzz", "cat"}, "unknown flag --zzzzzz (see wsbridge --help)"},
		{"flag without its value", []string{"cat", "--port"}, ""}, // after COMMAND: the program's own argument
		{"value missing", []string{"--port"}, "--port needs a value: --port=VALUE"},
		{"bad duration", []string{"--ping-interval=soon", "cat"}, "--ping-interval=soon: want a duration such as 500ms"},
		{"bad number", []string{"--maxforks=many", "cat"}, "--maxforks=many: want a whole number"},
		{"bad boolean", []string{"--demo=maybe", "cat"}, "--demo=maybe: want true or false"},
		{"malformed IPv4 address", []string{"--address=256.1.1.1", "cat"}, "--address=256.1.1.1: not an IPv4 address"},
		{"malformed IPv6 address", []string{"--address=::g", "cat"}, "--address=::g: not an IPv6 address"},
		{"unix socket address", []string{"--address=unix:/tmp/x.sock", "cat"}, "--address=unix:/tmp/x.sock: unix sockets are not supported yet"},
		{"closems out of range", []string{"--closems=18446744073710", "cat"}, "--closems=18446744073710: want 0 to 3600000 (an hour)"},
		{"missing workdir", []string{"--workdir=/no/such/dir", "cat"}, "--workdir=/no/such/dir: no such directory"},
		{"missing dir", []string{"--dir=/no/such/dir"}, "--dir=/no/such/dir: no such directory"},
		{"staticdir is a file", []string{"--staticdir=/etc/passwd", "cat"}, "--staticdir=/etc/passwd: not a directory"},
		{"unknown framing", []string{"--framing=morse", "cat"}, "--framing=morse: want line, raw, len32 or mux"},
		{"mux without shared", []string{"--framing=mux", "cat"}, "--framing=mux: mux addresses the clients of one shared program: add --shared"},
		// websocketd's boolean takes no value: the flag after it is named too.
		{"websocketd's flags not yet here", []string{"--reverselookup", "--cgidir=/tmp", "cat"}, "--cgidir, --reverselookup: websocketd flag not supported by this version of wsbridge yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				return // documents that flags after COMMAND are the program's
			}
			out, err := exec.Command(bridgeBin, tc.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; output %q", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "wsbridge: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("output %q, want one line with %q", out, tc.want)
			}
			msg := strings.TrimPrefix(lines[0], "wsbridge: ")
			for _, pkg := range []string{"procs:", "bridge:", "framing:", "parse error", "flag provided"} {
				if strings.Contains(msg, pkg) {
					t.Errorf("output %q speaks of %q, not in the user's words", out, pkg)
				}
			}
		})
	}
}

// TestSuggest checks which names count as a slip of the keyboard.
func TestSuggest(t *testing.T) {
	names := []string{"port", "address", "origin", "staticdir", "shared", "max-message", "max-conns", "queue"}
	for _, tc := range []struct{ typed, want string }{
		{"prot", "port"},
		{"Port", "port"},
		{"adress", "address"},
		{"sharde", "shared"},
		{"max-mesage", "max-message"},
		{"stat", "staticdir"},
		{"max", ""}, // a prefix of two names: no guess
		{"zzzz", ""},
		{"q", ""},
	} {
		if got := suggest(tc.typed, names); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.typed, got, tc.want)
		}
	}
}

// TestPortTaken: a port another program has is not a bad flag (exit 1,
// not 2), but the message says what to do.
func TestPortTaken(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	out, err := exec.Command(bridgeBin, "--address=127.0.0.1", "--port="+port, "cat").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; output %q", err, out)
	}
	want := "cannot listen on 127.0.0.1:" + port + ": another program (another wsbridge?) has that port: stop it or choose another with --port"
	if !strings.Contains(string(out), want) {
		t.Errorf("output %q, want %q", out, want)
	}
}
