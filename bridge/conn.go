package bridge

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/wsbridge/wsbridge/bridge/handover"
	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/poll"
)

// idleTimeout is how long a kept-alive connection may wait for the first
// byte of its next request.
const idleTimeout = time.Minute

// handle reads a connection's request heads and dispatches each, until
// one takes the connection over (an upgrade) or the connection ends.
func (s *Server) handle(conn net.Conn) {
	if n := s.conns.Add(1); s.opts.MaxConns > 0 && n > int64(s.opts.MaxConns) {
		s.conns.Add(-1)
		s.stats.refuse(http.StatusServiceUnavailable)
		s.log.Info("refused: --max-conns reached", "remote", conn.RemoteAddr(), "max", s.opts.MaxConns)
		s.reject(conn, http.StatusServiceUnavailable, "too many connections; try again later", true)
		s.sessions.Done()
		return
	}
	buf := poll.Get(s.opts.MaxHeaderBytes)
	defer poll.Put(buf) // the session outlives this call; the head buffer does not
	if !s.handshaking(conn, true) {
		// Shutdown has begun: no new request is read.
		_ = conn.Close()
		s.connDone()
		return
	}
	var peer http1.Peer
	n, handed := 0, false
	if h, ok := conn.(*handover.Conn); ok {
		// A web server parsed the request and handed the connection
		// over: its head is read from the message, as if from the
		// socket, and the connection ends with this request (the
		// client's next one is the web server's to answer).
		r := h.Handed()
		s.log.Debug("handed over", "remote", conn.RemoteAddr(), "by", r.Script)
		if len(r.Head) > len(buf) {
			s.refuseHead(conn, http1.ErrHeadTooLarge)
			s.handshaking(conn, false)
			s.connDone()
			return
		}
		peer = http1.Peer{Remote: conn.RemoteAddr(), Local: conn.LocalAddr(), Secure: r.Secure}
		n, handed = copy(buf, r.Head), true
	} else {
		ready, p, err := s.prepare(conn)
		if err != nil {
			s.log.Debug("connection not ready for a request", "remote", conn.RemoteAddr(), "err", err)
			_ = conn.Close()
			s.handshaking(conn, false)
			s.connDone()
			return
		}
		if ready != conn {
			// Shutdown cuts the wait for a head on the connection
			// requests are read from now.
			s.handshaking(conn, false)
			if !s.handshaking(ready, true) {
				_ = ready.Close()
				s.connDone()
				return
			}
		}
		conn, peer = ready, p
	}
	// A connection carries plain requests, kept alive, until one is an
	// upgrade; n bytes of the next request may be read already. Between
	// requests it may idle for idleTimeout; every head, the first or a
	// later one, must then arrive whole within HandshakeTimeout of its
	// first byte, or a slowloris client could hold a connection for the
	// idle timeout at each request.
	keptAlive := false
	for {
		var err error
		if keptAlive && n == 0 {
			_ = conn.SetDeadline(time.Now().Add(idleTimeout))
			if s.isStopping() {
				// Shutdown began as the last answer went out: its
				// deadline may be the one just replaced.
				http1.LingerClose(conn)
				break
			}
			if n, err = http1.AwaitRequest(conn, buf); err != nil {
				s.log.Debug("no request head", "remote", conn.RemoteAddr(), "err", err)
				_ = conn.Close()
				break
			}
		}
		_ = conn.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
		if s.isStopping() {
			http1.LingerClose(conn) // as above: no new request once shutdown began
			break
		}
		hl, m, err := http1.ReadHead(conn, buf, n)
		var req *http1.Request
		if err == nil {
			req, err = http1.Parse(buf[:hl], peer)
		}
		if err == nil && s.opts.trusted.any() {
			req.Peer = s.opts.trusted.forwarded(req.Fields, peer, s.opts.ForwardedRFC)
		}
		if err != nil {
			s.refuseHead(conn, err)
			break
		}
		req.Close = req.Close || handed
		var extra []byte // what arrived after the head
		if m > hl {
			extra = bytes.Clone(buf[hl:m])
		}
		switch s.dispatch(conn, req, extra) {
		case takenConn:
			return // the connection is a client's now: it calls connDone
		case keepConn:
			if s.isStopping() || handed {
				break
			}
			n, keptAlive = copy(buf, buf[hl:m]), true
			continue
		}
		http1.LingerClose(conn)
		break
	}
	s.handshaking(conn, false)
	s.connDone()
}

// refuseHead answers a head that could not be read or parsed.
func (s *Server) refuseHead(conn net.Conn, err error) {
	switch {
	case errors.Is(err, http1.ErrHeadTooLarge):
		s.reject(conn, http.StatusRequestHeaderFieldsTooLarge, "request head larger than "+strconv.Itoa(s.opts.MaxHeaderBytes)+" bytes", false)
	case errors.Is(err, http1.ErrHeadBad):
		s.reject(conn, http.StatusBadRequest, "malformed request", false)
	default:
		// Timed out, dropped, or cut by shutdown before a whole head
		// arrived (a kept-alive connection idles here).
		s.log.Debug("no request head", "remote", conn.RemoteAddr(), "err", err)
		_ = conn.Close()
	}
}

// reject answers a request the server will not serve with a short text
// and closes the connection.
func (s *Server) reject(conn net.Conn, code int, reason string, retry bool) {
	s.respond(conn, code, reason, retry)
	http1.LingerClose(conn)
}

// respond writes a short text answer that closes the connection, without
// closing it.
func (s *Server) respond(conn net.Conn, code int, reason string, retry bool) {
	_ = conn.SetDeadline(time.Now().Add(s.opts.CloseTimeout))
	_, _ = conn.Write(http1.AppendText(nil, code, reason, retry, s.hdrAll, s.hdrHTTP))
}

// respondPlain is respond for the pages, which never ask to retry.
func (s *Server) respondPlain(conn net.Conn, code int, reason string) {
	s.respond(conn, code, reason, false)
}
