package bridge

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// TestForwardedWalk: the client is the first untrusted address from the
// right; a hop that is malformed, unknown or obfuscated ends the walk at
// the last trusted one; a spoofed leftmost entry is never believed past
// an untrusted hop; an untrusted peer's fields change nothing.
func TestForwardedWalk(t *testing.T) {
	trusted, err := newProxies([]string{"10.0.0.0/8,::1", "unix"})
	if err != nil {
		t.Fatal(err)
	}
	proxy := http1.Peer{Remote: &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 5000}}
	stranger := http1.Peer{Remote: &net.TCPAddr{IP: net.ParseIP("192.0.2.9"), Port: 5000}}
	unixPeer := http1.Peer{Remote: &net.UnixAddr{Name: "@", Net: "unix"}}
	f := func(kv ...string) [][2]string {
		var out [][2]string
		for i := 0; i < len(kv); i += 2 {
			out = append(out, [2]string{kv[i], kv[i+1]})
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		peer   http1.Peer
		rfc    bool
		fields [][2]string
		want   http1.Forwarded
		secure bool
	}{
		{"xff one hop", proxy, false, f("X-Forwarded-For", "198.51.100.7"), http1.Forwarded{For: "198.51.100.7"}, false},
		{"xff trusted hops skipped", proxy, false, f("X-Forwarded-For", "198.51.100.7, 10.1.1.1", "x-forwarded-for", "10.2.2.2"), http1.Forwarded{For: "198.51.100.7"}, false},
		{"xff spoofed leftmost", proxy, false, f("X-Forwarded-For", "1.2.3.4, 198.51.100.7, 10.1.1.1"), http1.Forwarded{For: "198.51.100.7"}, false},
		{"xff all trusted", proxy, false, f("X-Forwarded-For", "10.9.9.9, 10.1.1.1"), http1.Forwarded{For: "10.9.9.9"}, false},
		{"xff malformed hop", proxy, false, f("X-Forwarded-For", "198.51.100.7, <script>, 10.1.1.1"), http1.Forwarded{For: "10.1.1.1"}, false},
		{"xff with port and IPv6", proxy, false, f("X-Forwarded-For", "[2001:db8::1]:4711, ::1"), http1.Forwarded{For: "[2001:db8::1]:4711"}, false},
		{"xff unknown", proxy, false, f("X-Forwarded-For", "unknown"), http1.Forwarded{}, false},
		{"xff proto and host", proxy, false, f("X-Forwarded-For", "198.51.100.7", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "ws.example"),
			http1.Forwarded{For: "198.51.100.7", Proto: "https", Host: "ws.example"}, true},
		{"xff proto nearest proxy's", proxy, false, f("X-Forwarded-Proto", "http, https"), http1.Forwarded{Proto: "https"}, true},
		{"xff bad host dropped", proxy, false, f("X-Forwarded-Host", "a b"), http1.Forwarded{}, false},
		{"xff ignored when rfc kept", proxy, true, f("X-Forwarded-For", "198.51.100.7"), http1.Forwarded{}, false},
		{"rfc ignored when xff kept", proxy, false, f("Forwarded", "for=198.51.100.7"), http1.Forwarded{}, false},
		{"untrusted peer", stranger, false, f("X-Forwarded-For", "198.51.100.7", "X-Forwarded-Proto", "https"), http1.Forwarded{}, false},
		{"unix socket trusted", unixPeer, false, f("X-Forwarded-For", "198.51.100.7"), http1.Forwarded{For: "198.51.100.7"}, false},
		{"rfc element", proxy, true, f("Forwarded", `for=198.51.100.7;proto=https;host="ws.example:8443"`),
			http1.Forwarded{For: "198.51.100.7", Proto: "https", Host: "ws.example:8443"}, true},
		{"rfc quoted IPv6 with port", proxy, true, f("Forwarded", `For="[2001:db8:cafe::17]:4711"`), http1.Forwarded{For: "[2001:db8:cafe::17]:4711"}, false},
		{"rfc chain", proxy, true, f("Forwarded", `for=1.2.3.4, for=198.51.100.7;proto=https, for="[::1]";proto=http`),
			http1.Forwarded{For: "198.51.100.7", Proto: "https"}, true},
		{"rfc obfuscated", proxy, true, f("Forwarded", `for=198.51.100.7, for=_hidden;proto=https`), http1.Forwarded{Proto: "https"}, true},
		{"rfc obfuscated port", proxy, true, f("Forwarded", `for="[2001:db8::1]:_p"`), http1.Forwarded{For: "2001:db8::1"}, false},
		{"rfc quoted comma", proxy, true, f("Forwarded", `for=198.51.100.7;host="a,b", for=10.1.1.1`), http1.Forwarded{For: "198.51.100.7"}, false},
		{"rfc unquoted port malformed", proxy, true, f("Forwarded", `for=198.51.100.7:80`), http1.Forwarded{}, false},
		{"rfc unterminated quote", proxy, true, f("Forwarded", `for="198.51.100.7`), http1.Forwarded{}, false},
		{"rfc malformed left of trusted", proxy, true, f("Forwarded", `for=1.2.3.4, for="[x]", for=10.1.1.1`), http1.Forwarded{For: "10.1.1.1"}, false},
		{"rfc unsplittable", proxy, true, f("Forwarded", `for=1.2.3.4, for=[x], for=10.1.1.1`), http1.Forwarded{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := trusted.forwarded(tc.fields, tc.peer, tc.rfc)
			var fwd http1.Forwarded
			if got.Forwarded != nil {
				fwd = *got.Forwarded
			}
			if fwd != tc.want || got.Secure != tc.secure {
				t.Errorf("forwarded = %+v secure %v, want %+v secure %v", fwd, got.Secure, tc.want, tc.secure)
			}
			if tc.want.For == "" && got.RemoteString() != tc.peer.Remote.String() {
				t.Errorf("RemoteString = %s, want the peer's own %s", got.RemoteString(), tc.peer.Remote)
			}
		})
	}
	if _, err := newProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

// FuzzForwarded: any fields give a peer whose client, if named, is an
// address, and whose proto is http or https.
func FuzzForwarded(f *testing.F) {
	trusted, _ := newProxies([]string{"10.0.0.0/8,::1"})
	proxy := http1.Peer{Remote: &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 5000}}
	f.Add(`for=198.51.100.7;proto=https;host="ws.example:8443", for="[::1]"`, "198.51.100.7, 10.1.1.1", "https", true)
	f.Add(`for=_x`, "[2001:db8::1]:80", "http", false)
	f.Fuzz(func(t *testing.T, fwd, xff, proto string, rfc bool) {
		p := trusted.forwarded([][2]string{{"Forwarded", fwd}, {"X-Forwarded-For", xff}, {"X-Forwarded-Proto", proto}}, proxy, rfc)
		if p.Forwarded == nil {
			return
		}
		if p.Forwarded.For != "" {
			if _, ok := parseNode(p.Forwarded.For); !ok {
				t.Fatalf("client %q is no address", p.Forwarded.For)
			}
		}
		if pr := p.Forwarded.Proto; pr != "" && pr != "http" && pr != "https" {
			t.Fatalf("proto %q", pr)
		}
	})
}

// proxyV2 is a PROXY v2 header naming src as the client.
func proxyV2(src, dst netip.AddrPort) []byte {
	b := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0, 12)
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(append(b, s[:]...), d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, src.Port()), dst.Port())
}

// TestProxyProtocol: over a real loopback socket, a trusted proxy's v1 or
// v2 header names the client the program sees as REMOTE_ADDR and the
// access log shows; a LOCAL header keeps the socket's address; without
// --trusted-proxy covering the sender a header is refused, and from a
// trusted one a connection without a header is closed, both logged.
func TestProxyProtocol(t *testing.T) {
	opts := func(trust string) Options {
		return Options{ProxyProtocol: true, TrustedProxies: []string{trust},
			Endpoints: []Endpoint{{Command: []string{testChildPath(t), "env"}}}}
	}
	session := func(t *testing.T, addr string, header []byte) map[string]string {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(header); err != nil {
			t.Fatal(err)
		}
		c := wstest.New(conn, 0)
		resp, err := c.Upgrade(wstest.Options{Path: "/", Host: addr})
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade after the header: %v %v", resp, err)
		}
		// The child prints its environment, then echoes.
		if err := c.WriteMessage(wstest.OpText, []byte("still echoing"), 0); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for {
			_, data, _, err := c.ReadMessage(10 * time.Second)
			if err != nil {
				t.Fatalf("reading the environment: %v", err)
			}
			if string(data) == "still echoing" {
				return env
			}
			k, v, _ := strings.Cut(string(data), "=")
			env[k] = v
		}
	}
	s := serveStoppable(t, opts("127.0.0.0/8"))
	for _, tc := range []struct {
		name, header, addr, port string
	}{
		{"v1", "PROXY TCP4 198.51.100.7 127.0.0.1 4711 8080\r\n", "198.51.100.7", "4711"},
		{"v2", string(proxyV2(netip.MustParseAddrPort("203.0.113.5:999"), netip.MustParseAddrPort("127.0.0.1:80"))), "203.0.113.5", "999"},
		{"v1 unknown", "PROXY UNKNOWN\r\n", "127.0.0.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := session(t, s.addr, []byte(tc.header))
			if env["REMOTE_ADDR"] != tc.addr || tc.port != "" && env["REMOTE_PORT"] != tc.port {
				t.Errorf("REMOTE_ADDR %s REMOTE_PORT %s, want %s %s", env["REMOTE_ADDR"], env["REMOTE_PORT"], tc.addr, tc.port)
			}
		})
	}
	recs := s.log.WaitRecords(t, "session", 3, 15*time.Second)
	var remotes []string
	for _, r := range recs {
		remotes = append(remotes, r["remote"])
	}
	if all := strings.Join(remotes, " "); !strings.Contains(all, "198.51.100.7:4711") || !strings.Contains(all, "203.0.113.5:999") {
		t.Errorf("access log remotes %v: want the forwarded clients", remotes)
	}

	// Refusals: each connection is closed, never left hanging, and why
	// is logged.
	closed := func(t *testing.T, addr string, send []byte, logLine string, log *testLog) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = conn.Write(send)
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, err := io.ReadAll(conn)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) || len(b) > 0 {
			t.Errorf("got %q, %v: want the connection closed unanswered", b, err)
		}
		if !logged(log, logLine, 10*time.Second) {
			t.Errorf("no %q in the log", logLine)
		}
	}
	t.Run("trusted without a header", func(t *testing.T) {
		closed(t, s.addr, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "without a sound PROXY protocol header", s.log)
	})
	t.Run("trusted with a malformed header", func(t *testing.T) {
		closed(t, s.addr, []byte("PROXY TCP4 1.2.3.4\r\n"), "without a sound PROXY protocol header", s.log)
	})
	t.Run("trusted, silent", func(t *testing.T) {
		closed(t, s.addr, nil, "i/o timeout", s.log)
	})
	other := serveStoppable(t, opts("10.0.0.0/8"))
	t.Run("untrusted sender", func(t *testing.T) {
		closed(t, other.addr, []byte("PROXY TCP4 198.51.100.7 127.0.0.1 4711 8080\r\n"), "from an address not trusted", other.log)
	})
	t.Run("untrusted plain client served", func(t *testing.T) {
		env := session(t, other.addr, nil)
		if env["REMOTE_ADDR"] != "127.0.0.1" {
			t.Errorf("REMOTE_ADDR %s, want the socket's", env["REMOTE_ADDR"])
		}
	})
	if _, err := New(Options{ProxyProtocol: true, Endpoints: opts("").Endpoints}); err == nil || !strings.Contains(err.Error(), "--trusted-proxy") {
		t.Errorf("ProxyProtocol without TrustedProxies: %v, want a start error naming --trusted-proxy", err)
	}
}

// TestForwardedOrigin: a page from the host a trusted proxy forwarded is
// same-origin, with the scheme it forwarded; from an untrusted peer the
// same fields are the program's only, and REMOTE_ADDR stays the socket's.
func TestForwardedOrigin(t *testing.T) {
	ep := []Endpoint{{Command: []string{testChildPath(t), "echo"}}}
	hdr := []string{"X-Forwarded-For: 198.51.100.7", "X-Forwarded-Proto: https", "X-Forwarded-Host: ws.example"}
	for _, tc := range []struct {
		trust string
		want  int
	}{{"127.0.0.1", 101}, {"10.0.0.0/8", 403}} {
		_, addr := serveTest(t, Options{TrustedProxies: []string{tc.trust}, Endpoints: ep})
		c, err := wstest.DialTCP(addr, wstest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Upgrade(wstest.Options{Path: "/", Host: addr, Origin: "https://ws.example", Header: hdr})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("trusting %s: origin https://ws.example answered %d, want %d", tc.trust, resp.StatusCode, tc.want)
		}
		c.Conn.Close()
	}
}
