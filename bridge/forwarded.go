package bridge

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// proxies are the trusted reverse proxies in front (TrustedProxies).
type proxies struct {
	nets []netip.Prefix
	unix bool // connections on a unix socket: its mode says who may connect
}

func newProxies(entries []string) (proxies, error) {
	var p proxies
	for _, list := range entries {
		for _, e := range strings.Split(list, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if e == "unix" {
				p.unix = true
				continue
			}
			pre, err := netip.ParsePrefix(e)
			if err != nil {
				a, aerr := netip.ParseAddr(strings.Trim(e, "[]"))
				if aerr != nil || a.Zone() != "" {
					return p, fmt.Errorf("trusted proxy %q: want an address or a CIDR (10.0.0.0/8, ::1), or unix", e)
				}
				pre = netip.PrefixFrom(a, a.BitLen())
			}
			p.nets = append(p.nets, pre.Masked())
		}
	}
	return p, nil
}

func (p proxies) any() bool { return p.unix || len(p.nets) > 0 }

func (p proxies) containsAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// trusts reports whether peer's client, as far as it is known now (the
// PROXY header's, else the socket's), is a trusted proxy.
func (p proxies) trusts(peer http1.Peer) bool {
	if f := peer.Forwarded; f != nil && f.For != "" {
		a, ok := parseNode(f.For)
		return ok && p.containsAddr(a.Addr())
	}
	switch r := peer.Remote.(type) {
	case *net.TCPAddr:
		a, ok := netip.AddrFromSlice(r.IP)
		return ok && p.containsAddr(a)
	case *net.UnixAddr:
		return p.unix
	}
	return false
}

// hop is one proxy's word on who connected to it.
type hop struct {
	node        netip.AddrPort // an address with port 0 when none was given
	named       bool           // node is an address: not unknown, obfuscated or absent
	proto, host string
	bad         bool // malformed: the walk ends at it
}

// forwarded returns peer as the forwarding fields of a request from a
// trusted proxy describe it: the chain is walked from the right, each hop
// added by a proxy already trusted, past the trusted ones; the first
// address that is not a trusted proxy is the client. An unknown or
// obfuscated hop, or a malformed one, ends the walk: the client is then
// the last trusted proxy reached. The proto and host are the ones the
// proxy nearest the client was given. useRFC says the proxies keep
// Forwarded (RFC 7239), not X-Forwarded-For: only the one they keep can
// be believed, for a client may send the other as it likes.
func (p proxies) forwarded(fields [][2]string, peer http1.Peer, useRFC bool) http1.Peer {
	if !p.trusts(peer) {
		return peer
	}
	var hops []hop
	var proto, host string
	for _, f := range fields {
		switch name := strings.ToLower(f[0]); {
		case useRFC && name == "forwarded":
			hops = append(hops, parseForwarded(f[1])...)
		case !useRFC && name == "x-forwarded-for":
			for _, e := range strings.Split(f[1], ",") {
				a, ok := parseNode(strings.TrimSpace(e))
				hops = append(hops, hop{node: a, named: ok, bad: !ok && !obfuscated(strings.TrimSpace(e))})
			}
		case !useRFC && name == "x-forwarded-proto":
			proto = lastItem(f[1])
		case !useRFC && name == "x-forwarded-host":
			host = lastItem(f[1])
		}
	}
	fwd := http1.Forwarded{}
	if peer.Forwarded != nil {
		fwd = *peer.Forwarded
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		if h.bad {
			break
		}
		proto, host = cmpOr(h.proto, proto), cmpOr(h.host, host)
		if !h.named {
			break
		}
		fwd.For = nodeString(h.node)
		if !p.containsAddr(h.node.Addr()) {
			break
		}
	}
	proto = strings.ToLower(proto)
	if proto == "http" || proto == "https" {
		fwd.Proto = proto
		peer.Secure = proto == "https"
	}
	if _, ok := hostName(host); ok {
		fwd.Host = host
	}
	if fwd != (http1.Forwarded{}) {
		peer.Forwarded = &fwd
	}
	return peer
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lastItem is the rightmost entry of a comma list: the nearest proxy's.
func lastItem(v string) string {
	i := strings.LastIndexByte(v, ',')
	return strings.TrimSpace(v[i+1:])
}

// nodeString is a node as Forwarded.For holds it: host:port, or the
// address alone when the port is unknown.
func nodeString(a netip.AddrPort) string {
	if a.Port() == 0 {
		return a.Addr().String()
	}
	return a.String()
}

// parseNode parses an address as proxies write it: 192.0.2.1,
// 192.0.2.1:80, 2001:db8::1, [2001:db8::1], [2001:db8::1]:80. An
// obfuscated port ([2001:db8::1]:_p) is dropped.
func parseNode(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	host := s
	if h, port, ok := strings.Cut(s, "]:"); ok && strings.HasPrefix(s, "[") && strings.HasPrefix(port, "_") {
		host = h + "]"
	} else if h, port, ok := strings.Cut(s, ":"); ok && strings.HasPrefix(port, "_") && !strings.Contains(port, ":") {
		host = h
	}
	if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil || a.Zone() != "" || strings.HasPrefix(host, "[") && !a.Is6() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), 0), true
}

// obfuscated reports whether s is RFC 7239's "unknown" or an obfuscated
// identifier ("_" then letters, digits, ".", "_", "-").
func obfuscated(s string) bool {
	if strings.EqualFold(s, "unknown") {
		return true
	}
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseForwarded parses a Forwarded field value (RFC 7239 4): elements
// separated by commas, each pairs name=value separated by semicolons, a
// value a token or a quoted string. A malformed element is a bad hop.
func parseForwarded(v string) []hop {
	var hops []hop
	h, i := hop{}, 0
	for {
		// One pair: name "=" value.
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		j := i
		for j < len(v) && isTokenChar(v[j]) {
			j++
		}
		name := strings.ToLower(v[i:j])
		if name == "" || j == len(v) || v[j] != '=' {
			return append(hops, hop{bad: true}) // the rest cannot be split safely
		}
		value, n, ok := fieldValue(v[j+1:])
		if !ok {
			return append(hops, hop{bad: true})
		}
		i = j + 1 + n
		switch name {
		case "for":
			if a, ok := parseNode(value); ok {
				h.node, h.named = a, true
			} else if !obfuscated(value) {
				h.bad = true
			}
		case "proto":
			h.proto = value
		case "host":
			h.host = value
		}
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		switch {
		case i == len(v):
			return append(hops, h)
		case v[i] == ';':
			i++
		case v[i] == ',':
			hops, h = append(hops, h), hop{}
			i++
		default:
			return append(hops, hop{bad: true})
		}
	}
}

// fieldValue reads a token or a quoted string at the start of s: the
// value, how many bytes it took, and whether it is well formed.
func fieldValue(s string) (string, int, bool) {
	if s == "" || s[0] != '"' {
		n := 0
		for n < len(s) && isTokenChar(s[n]) {
			n++
		}
		return s[:n], n, n > 0
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), i + 1, true
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c < ' ' && c != '\t' || c == 0x7f:
			return "", 0, false
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

func isTokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
}
