package bridge

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/proxyproto"
	"golang.org/x/sys/unix"
)

// proxyHeaderTimeout bounds the wait for a PROXY header: a proxy sends
// it at once, with its connection.
const proxyHeaderTimeout = 2 * time.Second

// proxyHeader reads the PROXY protocol header of a connection from a
// trusted proxy (ProxyProtocol) and records the client it names in peer:
// from a trusted proxy the header is required; from anyone else one is
// refused, for a client could name any address in it. A LOCAL header (a
// proxy's health check) names no client: the socket's addresses stand.
func (s *Server) proxyHeader(conn net.Conn, peer *http1.Peer) (net.Conn, error) {
	if !s.opts.ProxyProtocol {
		return conn, nil
	}
	defer conn.SetReadDeadline(time.Time{})
	if !s.opts.trusted.trusts(*peer) {
		// A client's first request may take the handshake timeout to
		// come, as without --proxy-protocol. Five bytes tell a header;
		// a client that sends fewer first is left to the HTTP parser,
		// which refuses a header as a malformed request anyway.
		_ = conn.SetReadDeadline(time.Now().Add(s.opts.HandshakeTimeout))
		if b := peek(conn); len(b) >= 5 && proxyproto.Begins(b) {
			s.stats.failed(failProxyHeader)
			s.log.Info("refused: a PROXY protocol header from an address not trusted (see --trusted-proxy)", "remote", peer.RemoteString())
			return nil, errors.New("PROXY header from an untrusted address")
		}
		return conn, nil
	}
	_ = conn.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
	h, err := proxyproto.Read(conn)
	if err != nil {
		s.stats.failed(failProxyHeader)
		s.log.Info("refused: a trusted proxy's connection without a sound PROXY protocol header (--proxy-protocol)", "remote", peer.RemoteString(), "err", err)
		return nil, fmt.Errorf("PROXY header: %w", err)
	}
	if !h.Local {
		peer.Forwarded = &http1.Forwarded{For: h.Source.String()}
	}
	return conn, nil
}

// peek returns the first bytes that have arrived on conn, leaving them
// there, once at least one has or the read deadline passes; nil when
// conn cannot be peeked at.
func peek(conn net.Conn) []byte {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var buf [16]byte
	n := 0
	_ = rc.Read(func(fd uintptr) bool {
		m, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK)
		if err == unix.EAGAIN {
			return false
		}
		n = max(m, 0)
		return true
	})
	return buf[:n]
}
