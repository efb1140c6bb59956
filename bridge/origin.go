package bridge

import (
	"fmt"
	"net"
	"net/url"
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
		oHost, oPort := splitHostPort(u.Host, defaultPort(u.Scheme))
		if p.same {
			hHost, hPort := splitHostPort(strings.ToLower(host), defaultPort(map[bool]string{false: "http", true: "https"}[tls]))
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

func splitHostPort(hp, defPort string) (string, string) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return strings.Trim(hp, "[]"), defPort
	}
	return h, p
}

// originFlagValue turns an Origin into the --origin value that allows it.
func originFlagValue(origin string) string {
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		return u.Host
	}
	return origin
}
