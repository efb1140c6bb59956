package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsbridge/wsbridge/bridge/backend"
	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/modes"
	"github.com/wsbridge/wsbridge/bridge/pages"
	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
)

// Server accepts connections on its listeners, reads each request head
// itself and dispatches it (dispatch.go): a WebSocket upgrade becomes a
// client of its endpoint's mode, anything else gets a page or a short
// answer, on the same port.
type Server struct {
	opts   Options
	log    *slog.Logger
	eps    []*endpoint
	routes routes
	origin originPolicy
	hosts  hostPolicy

	// The --header blocks, rendered once: every answer, upgrades only,
	// every answer but upgrades. nil when empty.
	hdrAll, hdrWS, hdrHTTP []byte

	site    pages.Site         // answers what is not a WebSocket upgrade
	backend *backend.Forwarder // or, when set, forwards it (--http-backend)
	host    *modes.Host        // what the modes run in; its Poller is set by Serve

	liveMu   sync.Mutex
	live     map[modes.Closer]struct{} // running sessions and CGI connections, closed at shutdown
	heads    map[net.Conn]struct{}     // connections whose request head is being read
	stopping bool                      // Serve's context has ended
	draining atomic.Bool               // shutdown has begun: health checks get 503 (health.go)
	stats    stats                     // what the metrics show (health.go)
	drainCut chan struct{}             // closed: the drain ends now (tests)
	conns    atomic.Int64              // open connections, for MaxConns
	forks    atomic.Int64              // running children, for MaxForks
	nextID   atomic.Uint64
	uidBase  string
	sessions sync.WaitGroup
}

// New checks opts and returns a Server ready to Serve.
func New(opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		origin:   newOriginPolicy(opts.Origins, opts.SameOrigin),
		hdrAll:   http1.HeaderBlock(opts.Header),
		hdrWS:    http1.HeaderBlock(opts.HeaderWS),
		hdrHTTP:  http1.HeaderBlock(opts.HeaderHTTP),
		uidBase:  hex.EncodeToString(rnd[:]),
		live:     map[modes.Closer]struct{}{},
		heads:    map[net.Conn]struct{}{},
		drainCut: make(chan struct{}),
	}
	s.host = &modes.Host{
		Log: s.log, Forks: &s.forks, OutBuffer: opts.OutBuffer, ServerSoftware: opts.ServerSoftware,
		Track: s.track, Untrack: s.untrack, Running: &s.sessions,
	}
	s.hosts, _ = newHostPolicy(opts.AllowedHosts) // checked by withDefaults
	for _, e := range opts.Endpoints {
		ep := s.newEndpoint(e, nil)
		s.eps = append(s.eps, ep)
		if ep.scripts == nil {
			s.stats.endpoint(ep) // its metrics show before its first client
		}
	}
	if s.routes, err = newRoutes(s.eps); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	s.site = pages.Site{
		Demo: opts.Demo, Console: opts.DevConsole, StaticDir: opts.StaticDir,
		Header: nonEmpty(opts.Header, opts.HeaderHTTP), Respond: s.respondPlain,
		Endpoint: s.servesPath, Log: s.log,
	}
	if s.backend, err = s.newBackend(); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return s, nil
}

// Serve accepts connections on every listener until ctx ends, then
// drains for Options.Drain (health checks get 503, everything else is
// served as before), then stops accepting, closes every session with
// 1001 and ends its child, and returns once all are gone. It returns nil after a clean shutdown, or the
// error that stopped a listener.
func (s *Server) Serve(ctx context.Context, listeners ...net.Listener) error {
	if len(listeners) == 0 {
		return errors.New("bridge: no listener")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The poller lives as long as Serve: a Server never served holds no
	// goroutine or descriptor.
	if p, err := poll.NewPoller(); err == nil {
		s.host.Poller = p
	} else {
		s.log.Warn("idle connections will each keep a goroutine", "err", err)
	}
	for _, ep := range s.eps {
		if ep.hub != nil && !ep.Shared.Lazy {
			ep.hub.Start()
		}
	}

	var (
		accepting sync.WaitGroup
		errMu     sync.Mutex
		firstErr  error
	)
	for _, l := range listeners {
		accepting.Go(func() {
			if err := s.accept(ctx, l); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				cancel()
			}
		})
	}
	<-ctx.Done()
	errMu.Lock()
	failed := firstErr != nil
	errMu.Unlock()
	if !failed {
		s.drain() // listeners still open: a load balancer may still send clients
	}
	for _, l := range listeners {
		_ = l.Close()
	}
	accepting.Wait()
	s.closeAll()
	s.sessions.Wait()
	if s.backend != nil {
		s.backend.Close() // its idle connections to the web server
	}
	if s.host.Poller != nil {
		s.host.Poller.Close()
	}
	return firstErr
}

// accept runs one listener's accept loop. A transient error (such as
// running out of file descriptors) is logged and retried with backoff.
func (s *Server) accept(ctx context.Context, l net.Listener) error {
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Error("accept", "err", err, "retry", delay)
				select {
				case <-time.After(delay):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("bridge: accept on %s: %w", l.Addr(), err)
		}
		delay = 0
		s.sessions.Add(1)
		go s.handle(conn) // calls s.sessions.Done when conn is finished
	}
}

// isStopping reports whether Serve's context has ended.
func (s *Server) isStopping() bool {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	return s.stopping
}

// connDone is called once a connection the server kept is finished.
func (s *Server) connDone() {
	s.conns.Add(-1)
	s.sessions.Done()
}

// track registers a running session, so shutdown can close it.
func (s *Server) track(sess modes.Closer) {
	s.liveMu.Lock()
	s.live[sess] = struct{}{}
	stopping := s.stopping
	s.liveMu.Unlock()
	if stopping {
		sess.CloseClient(transport.Shutdown)
	}
}

func (s *Server) untrack(sess modes.Closer) {
	s.liveMu.Lock()
	delete(s.live, sess)
	s.liveMu.Unlock()
}

// handshaking registers conn (in) or forgets it (!in) as waiting for its
// request head, so shutdown can cut the wait short. Registering fails
// once shutdown has begun.
func (s *Server) handshaking(conn net.Conn, in bool) bool {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if !in {
		delete(s.heads, conn)
		return true
	}
	if s.stopping {
		return false
	}
	s.heads[conn] = struct{}{}
	return true
}

// closeAll closes every session with 1001, once Serve's context ends; a
// session that starts later is closed as it registers.
func (s *Server) closeAll() {
	s.liveMu.Lock()
	s.stopping = true
	all := make([]modes.Closer, 0, len(s.live))
	for sess := range s.live {
		all = append(all, sess)
	}
	// A connection that has not sent its request yet (a browser's
	// preconnect, say, or a kept-alive one between requests) would hold
	// shutdown for the handshake timeout; one being answered gets
	// CloseTimeout to finish.
	for conn := range s.heads {
		_ = conn.SetReadDeadline(time.Now())
		_ = conn.SetWriteDeadline(time.Now().Add(s.opts.CloseTimeout))
	}
	s.liveMu.Unlock()
	for _, sess := range all {
		sess.CloseClient(transport.Shutdown)
	}
	for _, ep := range s.eps {
		if ep.hub != nil {
			ep.hub.Shutdown()
		}
		if ep.scripts != nil {
			ep.scripts.shutdown()
		}
	}
}
