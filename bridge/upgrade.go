package bridge

import (
	"net"
	"net/http"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/wsconn"
)

// upgrade answers a WebSocket upgrade on conn: its checks in the order
// RFC 6455 and gobwas/ws's Upgrader (whose answers clients know) make
// them, the routing, the origin and the fork limit, then the 101, and the
// client goes to its endpoint's mode. extra holds bytes that arrived
// after the head: the client's first frames.
func (s *Server) upgrade(conn net.Conn, req *http1.Request, extra []byte) {
	id := s.nextID.Add(1)
	var (
		rej *http1.Rejection
		rt  route
	)
	switch {
	case req.CheckLine() != nil:
		rej = req.CheckLine()
	case req.PathErr != nil || req.Absolute:
		rej = http1.Reject(http.StatusBadRequest, "400 Bad Request: malformed path\n", s.hdrHTTP)
	default:
		var why error
		if rt, why = s.route(req); rt.ep == nil {
			s.log.Info("refused: no endpoint", "id", id, "remote", conn.RemoteAddr(), "path", req.Path, "why", why)
			rej = http1.Reject(http.StatusNotFound, "404 Not Found: no WebSocket endpoint at "+req.Path+"\n", s.hdrHTTP)
		}
	}
	if rej == nil {
		rej = req.CheckUpgrade()
	}
	if rej == nil {
		if err := s.origin.checkRequest(req); err != nil {
			s.log.Info("refused: origin", "id", id, "remote", conn.RemoteAddr(), "why", err)
			rej = http1.Reject(http.StatusForbidden, "403 Forbidden: "+err.Error()+"\n", s.hdrHTTP)
		}
	}
	forked := false
	if rej == nil {
		forked, rej = s.admit(rt.ep, id, req)
	}
	var err error
	if rej != nil {
		s.stats.refuse(rej.Status)
		_, err = conn.Write(http1.AppendReject(nil, rej, s.hdrAll))
		s.log.Debug("handshake failed", "id", id, "remote", conn.RemoteAddr(), "err", rej)
	} else if _, err = conn.Write(http1.AppendUpgrade(nil, req, s.hdrAll, s.hdrWS)); err != nil {
		s.log.Debug("handshake failed", "id", id, "remote", conn.RemoteAddr(), "err", err)
	}
	if rej != nil || err != nil {
		if forked {
			s.forks.Add(-1)
		}
		http1.LingerClose(conn)
		s.connDone()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	c := wsconn.New(conn, &rt.ep.ws, extra)
	s.serveClient(rt, c, req, id, forked, s.connDone)
}
