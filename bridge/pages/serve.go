//go:build !wsbridge_minimal

package pages

import (
	_ "embed"
	"net/http"
)

//go:embed demo.html
var demoPage []byte

// serveHTTP answers every request that is not a WebSocket upgrade: the
// demo page at "/", files of the static directory, the console for an
// endpoint's path, and otherwise a 426 that says what the path is for, or
// a 404 where no endpoint is (with a static directory, also where an
// endpoint at every path has no file). rawPath is the path as the request
// spelled it.
func (s *Site) serveHTTP(w http.ResponseWriter, r *http.Request, rawPath string) {
	for _, h := range s.Header {
		for k, v := range h {
			w.Header()[k] = v
		}
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if s.Demo && r.URL.Path == "/" && get {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(demoPage)
		return
	}
	found, own, why := s.Endpoint(rawPath, r.URL.Path)
	// With a static directory, a path with no file is the endpoint's only
	// where the endpoint was put: an endpoint at every path (or at "/")
	// would otherwise answer a browser's /favicon.ico with its 426.
	if get && s.StaticDir != "" && s.serveStatic(w, r, own) {
		return
	}
	switch {
	case !found:
		s.Log.Debug("not found", "path", r.URL.Path, "why", why)
		http.Error(w, "404 Not Found: no WebSocket endpoint at "+r.URL.Path, http.StatusNotFound)
	case get && s.Console:
		serveConsole(w)
	default:
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "426 Upgrade Required: this is a WebSocket endpoint; connect with a WebSocket client, e.g. ws://"+r.Host+r.URL.Path, http.StatusUpgradeRequired)
	}
}
