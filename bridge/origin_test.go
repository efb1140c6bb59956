package bridge

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostPolicy(t *testing.T) {
	self, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(self, ".")
	for _, tc := range []struct {
		name    string
		allow   []string
		host    string
		allowed bool
		bad     bool // answered 400, not 421
	}{
		{"no Host", nil, "", true, false},
		{"IPv4", nil, "192.168.1.10:8080", true, false},
		{"IPv4 no port", nil, "10.0.0.1", true, false},
		{"IPv6", nil, "[::1]:8080", true, false},
		{"IPv6 no port", nil, "[fe80::1]", true, false},
		{"localhost", nil, "localhost:8080", true, false},
		{"localhost upper case, trailing dot", nil, "LocalHost.:8080", true, false},
		{"hostname", nil, self + ":8080", true, false},
		{"short hostname under .local", nil, strings.ToUpper(short) + ".local", true, false},
		{"rebinding name", nil, "rebind.attacker.example:8080", false, false},
		{"name ending in localhost", nil, "localhost.attacker.example", false, false},
		{"hostname under another domain", nil, short + ".attacker.example", false, false},
		{"listed", []string{"board.lan"}, "Board.LAN:80", true, false},
		{"listed in a comma list", []string{"a.example, board.lan"}, "board.lan", true, false},
		{"listed with a port", []string{"board.lan:8080"}, "board.lan:9", true, false},
		{"not below a listed name", []string{"board.lan"}, "x.board.lan", false, false},
		{"domain", []string{".lan"}, "x.y.lan", true, false},
		{"domain itself", []string{".lan"}, "lan", true, false},
		{"not a domain suffix", []string{".lan"}, "xlan", false, false},
		{"star", []string{"*"}, "rebind.attacker.example", true, false},
		{"malformed port", nil, "localhost:80x", false, true},
		{"space", nil, "a b", false, true},
		{"bare IPv6", nil, "::1", false, true},
		{"bracketed IPv4", nil, "[127.0.0.1]", false, true},
		{"empty label", nil, "a..b", false, true},
		{"user info", nil, "user@localhost", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newHostPolicy(tc.allow)
			if err != nil {
				t.Fatal(err)
			}
			err = p.check(tc.host)
			if (err == nil) != tc.allowed || errors.Is(err, errHostBad) != tc.bad {
				t.Fatalf("check(%q) = %v, want allowed=%v, malformed=%v", tc.host, err, tc.allowed, tc.bad)
			}
			if err != nil && !tc.bad && !strings.Contains(err.Error(), "--allow-host=") {
				t.Fatalf("refusal %q does not name the flag that allows it", err)
			}
		})
	}
}

// The machine's name under a search domain of resolv.conf is its own, as
// OpenWrt's routers are "openwrt.lan"; under another domain it is not.
func TestHostPolicySearchDomain(t *testing.T) {
	self, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(strings.ToLower(self), ".")
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 192.168.1.1\nsearch lan home.arpa.\n# search evil.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer func(old string) { resolvConf = old }(resolvConf)
	resolvConf = conf
	var p hostPolicy
	for host, allowed := range map[string]bool{
		short + ".lan:8080": true, short + ".home.arpa": true, short + ".evil.example": false, "other.lan": false,
	} {
		if err := p.check(host); (err == nil) != allowed {
			t.Errorf("check(%q) = %v, want allowed=%v", host, err, allowed)
		}
	}
}

func TestHostPolicyEntries(t *testing.T) {
	for _, e := range []string{"http://board.lan", "board.lan/x", ".", "..lan", "a b"} {
		if _, err := newHostPolicy([]string{e}); err == nil || !strings.Contains(err.Error(), "--allow-host") {
			t.Errorf("--allow-host=%s: %v, want it refused naming the flag", e, err)
		}
	}
}

// FuzzHostName checks the Host parser never panics, and that what it
// accepts is a lower-case name of letters, digits, '-', '_' and dots, or
// an IP address: nothing a refusal message or log line could be confused
// by, and nothing the policy would match other than as written.
func FuzzHostName(f *testing.F) {
	for _, s := range []string{"localhost:8080", "[::1]:80", "[fe80::1%25eth0]", "192.168.1.1", "Board.LAN.", "a..b", "x:", ":80", "[", "]:1", "user@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		name, ok := hostName(host)
		if !ok {
			if name != "" {
				t.Fatalf("hostName(%q) = %q, false: want no name", host, name)
			}
			return
		}
		if _, err := netip.ParseAddr(name); err == nil {
			return
		}
		if name == "" || name != strings.ToLower(name) || strings.HasSuffix(name, ".") {
			t.Fatalf("hostName(%q) = %q", host, name)
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
			t.Fatalf("hostName(%q) = %q holds other characters", host, name)
		}
		// The policy agrees with the parser: a well-formed Host is
		// never "malformed".
		if err := (hostPolicy{}).check(host); errors.Is(err, errHostBad) {
			t.Fatalf("check(%q) = %v after hostName accepted it", host, err)
		}
	})
}

func TestOriginPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		origins []string
		same    bool
		origin  string
		host    string
		allowed bool
	}{
		{"no origin header", nil, false, "", "dev:8080", true},
		{"default same origin", nil, false, "http://dev:8080", "dev:8080", true},
		{"default same origin default port", nil, false, "http://dev", "dev:80", true},
		{"default cross origin", nil, false, "http://evil.example", "dev:8080", false},
		{"default other port", nil, false, "http://dev:9000", "dev:8080", false},
		{"default https scheme port", nil, false, "https://dev", "dev", false},
		{"case insensitive", nil, false, "HTTP://DEV:8080", "dev:8080", true},
		{"star", []string{"*"}, false, "http://evil.example", "dev:8080", true},
		{"listed host any port", []string{"app.example"}, false, "https://app.example:4443", "dev:8080", true},
		{"listed host:port", []string{"app.example:8000"}, false, "http://app.example:8000", "dev:8080", true},
		{"listed wrong port", []string{"app.example:8000"}, false, "http://app.example:8001", "dev:8080", false},
		{"listed with scheme", []string{"https://app.example"}, false, "http://app.example", "dev:8080", false},
		{"comma list", []string{"a.example, b.example"}, false, "http://b.example", "dev", true},
		{"list excludes same origin", []string{"a.example"}, false, "http://dev:8080", "dev:8080", false},
		{"list plus sameorigin", []string{"a.example"}, true, "http://dev:8080", "dev:8080", true},
		{"null refused", nil, false, "null", "dev", false},
		{"null listed", []string{"null"}, false, "null", "dev", true},
		{"ipv6", nil, false, "http://[::1]:8080", "[::1]:8080", true},
		{"malformed", nil, false, "::::", "dev", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := newOriginPolicy(tc.origins, tc.same).check(tc.origin, tc.host, false)
			if (err == nil) != tc.allowed {
				t.Fatalf("check(%q, %q) = %v, want allowed=%v", tc.origin, tc.host, err, tc.allowed)
			}
			if err != nil && tc.origin != "::::" && !bytes.Contains([]byte(err.Error()), []byte("--origin")) {
				t.Fatalf("refusal %q does not name the flag that allows it", err)
			}
		})
	}
}
