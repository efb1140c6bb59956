package bridge

import (
	"errors"
	"fmt"
	"github.com/wsbridge/wsbridge/bridge/http1"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
)

// originPolicy decides which browser pages may open a WebSocket. A client
// that sends no Origin (a program, not a browser) is always allowed: the
// policy exists to stop other web sites from driving a device through the
// browser of someone on its network.
type originPolicy struct {
	any     bool     // --origin='*'
	allowed []string // --origin entries, lower case: "host", "host:port", "scheme://host[:port]" or "null"
	same    bool     // same-origin pages are allowed (the default, and --sameorigin)
}

func newOriginPolicy(origins []string, sameOrigin bool) originPolicy {
	p := originPolicy{same: sameOrigin || len(origins) == 0}
	for _, o := range origins {
		for _, e := range strings.Split(o, ",") {
			e = strings.ToLower(strings.TrimSpace(e))
			switch e {
			case "":
			case "*":
				p.any = true
			default:
				p.allowed = append(p.allowed, strings.TrimSuffix(e, "/"))
			}
		}
	}
	return p
}

// checkRequest checks req's Origin against the host and scheme the
// client asked for: a trusted proxy's forwarded ones when it gave them
// (see proxies.forwarded), so a page served through the proxy is
// same-origin.
func (p originPolicy) checkRequest(req *http1.Request) error {
	host := req.Host
	if f := req.Peer.Forwarded; f != nil && f.Host != "" {
		host = f.Host
	}
	return p.check(req.Origin, host, req.Peer.Secure)
}

// check returns nil when a page from origin may connect to host (the
// request's Host header), or an error that says which flag would allow it.
func (p originPolicy) check(origin, host string, tls bool) error {
	if origin == "" || p.any {
		return nil
	}
	o := strings.ToLower(origin)
	if o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" {
			return fmt.Errorf("malformed Origin %q", origin)
		}
		oHost, oPort := http1.SplitHostPort(u.Host, defaultPort(u.Scheme))
		if p.same {
			hHost, hPort := http1.SplitHostPort(strings.ToLower(host), defaultPort(map[bool]string{false: "http", true: "https"}[tls]))
			if oHost == hHost && oPort == hPort {
				return nil
			}
		}
		for _, a := range p.allowed {
			if matchOrigin(a, u.Scheme, oHost, oPort) {
				return nil
			}
		}
	} else {
		for _, a := range p.allowed {
			if a == "null" {
				return nil
			}
		}
	}
	return fmt.Errorf("origin %s is not allowed to connect to %s: allow it with --origin=%s, or any origin with --origin='*'", origin, host, originFlagValue(origin))
}

// matchOrigin matches one --origin entry, websocketd style: a port left out
// of the entry matches any port; a scheme left out matches any scheme.
func matchOrigin(entry, scheme, host, port string) bool {
	if s, rest, ok := strings.Cut(entry, "://"); ok {
		if s != scheme {
			return false
		}
		entry = rest
	}
	eHost, ePort, err := net.SplitHostPort(entry)
	if err != nil {
		eHost, ePort = strings.Trim(entry, "[]"), ""
	}
	return eHost == host && (ePort == "" || ePort == port)
}

func defaultPort(scheme string) string {
	if scheme == "https" || scheme == "wss" {
		return "443"
	}
	return "80"
}

// originFlagValue turns an Origin into the --origin value that allows it.
func originFlagValue(origin string) string {
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		return u.Host
	}
	return origin
}

// hostPolicy decides which Host values name this daemon. The origin
// policy alone cannot stop DNS rebinding: a page of attacker.example whose
// name the attacker then points at the board is same-origin with a request
// whose Host is attacker.example too. So every request, plain HTTP
// included (such a page could read the static files, the console and the
// demo as well), must name this daemon in its Host: an IP literal (a
// browser that connected by address, so no name was rebound: with NAT or
// a container the address may not be a local one, and it still names
// whatever answers there, which is this daemon), localhost, the machine's
// own name (see isMachineName), or a name given with --allow-host.
type hostPolicy struct {
	any     bool     // --allow-host='*'
	names   []string // exact names, lower case, without a trailing dot
	domains []string // ".lan": lan and every name below it, stored as ".lan"
}

// errHostBad is a Host value that is no host[:port] at all (answered 400,
// as RFC 9112 3.2 asks).
var errHostBad = errors.New("malformed Host")

func newHostPolicy(entries []string) (hostPolicy, error) {
	var p hostPolicy
	for _, list := range entries {
		for _, e := range strings.Split(list, ",") {
			e = strings.ToLower(strings.TrimSpace(e))
			switch {
			case e == "":
			case e == "*":
				p.any = true
			case strings.HasPrefix(e, "."):
				name, ok := hostName(e[1:])
				if !ok || name != strings.TrimSuffix(e[1:], ".") {
					return p, fmt.Errorf("--allow-host=%s: want a name (board.lan), a domain (.lan) or '*'", e)
				}
				p.domains = append(p.domains, "."+name)
			default:
				name, ok := hostName(e)
				if !ok {
					return p, fmt.Errorf("--allow-host=%s: want a name (board.lan), a domain (.lan) or '*'", e)
				}
				p.names = append(p.names, name)
			}
		}
	}
	return p, nil
}

// check returns nil when host, a request's Host value ("" when it has
// none), names this daemon, or an error that says which flag would allow
// it. A request without Host is allowed: every browser sends one, so it
// is not a rebinding page's.
func (p hostPolicy) check(host string) error {
	if host == "" || p.any {
		return nil
	}
	name, ok := hostName(host)
	switch {
	case !ok:
		return fmt.Errorf("%w %q", errHostBad, host)
	case name == "localhost":
		return nil
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return nil
	}
	if slices.Contains(p.names, name) {
		return nil
	}
	for _, d := range p.domains {
		if name == d[1:] || strings.HasSuffix(name, d) {
			return nil
		}
	}
	if isMachineName(name) {
		return nil
	}
	return fmt.Errorf("host %s does not name this server (an IP address, localhost or the machine's name): allow it with --allow-host=%s, or any Host with --allow-host='*'", host, name)
}

// resolvConf is where the machine's search domains are read from.
var resolvConf = "/etc/resolv.conf"

// isMachineName reports whether name is one of the machine's own: its
// host name as set, the first label of it, and that label under .local
// (mDNS) or under a search domain of resolv.conf (OpenWrt's
// "openwrt.lan"). None of these is resolved by public DNS, so a rebinding
// page cannot have one as its origin. Read at each request that needs it,
// not once: a board's name and domain may be set after the daemon starts
// (by DHCP, say).
func isMachineName(name string) bool {
	self, err := os.Hostname()
	if err != nil {
		return false
	}
	self = strings.TrimSuffix(strings.ToLower(self), ".")
	short, _, _ := strings.Cut(self, ".")
	if name == self || name == short || name == short+".local" {
		return true
	}
	domain, ok := strings.CutPrefix(name, short+".")
	return ok && slices.Contains(searchDomains(), domain)
}

// searchDomains returns the domains of the "search" and "domain" lines of
// resolv.conf, lower case.
func searchDomains() []string {
	f, err := os.Open(resolvConf)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 16<<10))
	var domains []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.ToLower(line))
		if len(f) > 1 && (f[0] == "search" || f[0] == "domain") {
			for _, d := range f[1:] {
				domains = append(domains, strings.TrimSuffix(d, "."))
			}
		}
	}
	return domains
}

// hostName returns the host of a Host value (host[:port], the host an IP
// literal, a bracketed IPv6 literal, or a name), lower case and without a
// trailing dot, and whether the value is well formed.
func hostName(host string) (string, bool) {
	h := host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		port := h[i+1:]
		if strings.Trim(port, "0123456789") != "" {
			return "", false
		}
		h = h[:i]
	}
	if strings.HasPrefix(h, "[") {
		a, err := netip.ParseAddr(strings.TrimSuffix(h[1:], "]"))
		if !strings.HasSuffix(h, "]") || err != nil || !a.Is6() {
			return "", false
		}
		return a.String(), true
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || len(h) > 253 {
		return "", false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return h, true
}
