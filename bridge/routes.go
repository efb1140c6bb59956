package bridge

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// routes finds the endpoint for a request path: the longest Path that is
// the request's path or a parent of it, else the catch-all.
type routes struct {
	byPath   []*endpoint // longest Path first
	catchAll *endpoint   // Path "": nil when every endpoint has a path
}

func newRoutes(eps []*endpoint) (routes, error) {
	var r routes
	seen := map[string]bool{}
	for _, ep := range eps {
		if seen[ep.Path] {
			if ep.Path == "" {
				return r, errors.New("more than one endpoint serves every path")
			}
			return r, fmt.Errorf("two endpoints at %s", ep.Path)
		}
		seen[ep.Path] = true
		if ep.Path == "" {
			r.catchAll = ep
			continue
		}
		r.byPath = append(r.byPath, ep)
	}
	sort.SliceStable(r.byPath, func(i, j int) bool { return len(r.byPath[i].Path) > len(r.byPath[j].Path) })
	return r, nil
}

// find returns the endpoint for path with the SCRIPT_NAME and PATH_INFO it
// gives the program, or nil.
func (r routes) find(path string) (ep *endpoint, script, info string) {
	for _, ep := range r.byPath {
		if ep.Path == "/" {
			return ep, "", path // mounted at the root: the whole path is PATH_INFO
		}
		if rest, ok := strings.CutPrefix(path, ep.Path); ok && (rest == "" || rest[0] == '/') {
			return ep, ep.Path, rest
		}
	}
	if r.catchAll != nil {
		return r.catchAll, path, ""
	}
	return nil, "", ""
}

// ErrNoEndpoint is why a path no endpoint serves is refused.
var ErrNoEndpoint = errors.New("no endpoint serves this path")

// lookup is find, followed, for a script directory, by the script the path
// names: the endpoint returned is then the script's own, and SCRIPT_NAME
// is the mount point and the script's path. raw is the path as the
// request spelled it, p the same decoded. A nil endpoint comes with the
// reason, for the log.
func (r routes) lookup(raw, p string) (ep *endpoint, script, info string, err error) {
	ep, script, info = r.find(p)
	switch {
	case ep == nil:
		return nil, "", "", ErrNoEndpoint
	case ep.scripts == nil:
		return ep, script, info, nil
	}
	mount := strings.TrimSuffix(ep.Path, "/") // find matched it: p starts with it
	rel, info, err := ep.scripts.resolve(raw, p[len(mount):])
	if err != nil {
		return nil, "", "", err
	}
	return ep.scripts.endpoint(rel), mount + "/" + rel, info, nil
}
