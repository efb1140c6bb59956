package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wsbridge/wsbridge/bridge/handover"
)

// handoverFlags are the daemon's side of the hand-over: the unix socket a
// web server's CGI hands connections to (bridge/handover).
type handoverFlags struct {
	socket, mode, owner, allow string
}

func (h *handoverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.socket, "handover", "", "")
	fs.StringVar(&h.mode, "handover-mode", "0660", "")
	fs.StringVar(&h.owner, "handover-owner", "", "")
	fs.StringVar(&h.allow, "handover-allow", "", "")
}

// handoverConfig is the hand-over socket to make, and how.
type handoverConfig struct {
	path string
	cfg  handover.Config
	// allowed, for the log: who may hand over.
	allowed string
}

// apply checks h and sets c.handover; with the socket and no --port or
// --address (set says which the command line or file gave), the daemon
// listens on the socket alone: the web server has the port.
func (h *handoverFlags) apply(c *config, set map[string]bool) error {
	if h.socket == "" {
		for _, name := range []string{"handover-mode", "handover-owner", "handover-allow"} {
			if set[name] {
				return badFlag(name, "--%s needs --handover=PATH, the socket it is about", name)
			}
		}
		return nil
	}
	if !filepath.IsAbs(h.socket) {
		return badFlag("handover", "--handover=%s: want an absolute path (a web server's CGI runs in another directory)", h.socket)
	}
	mode, err := strconv.ParseUint(h.mode, 8, 32)
	if err != nil || mode == 0 || mode > 0o777 {
		return badFlag("handover-mode", "--handover-mode=%s: want octal permissions such as 0660", h.mode)
	}
	hc := &handoverConfig{path: h.socket, cfg: handover.Config{Mode: fs.FileMode(mode)}}
	uids := map[uint32]bool{0: true, uint32(os.Getuid()): true}
	gids := map[uint32]bool{}
	if h.owner != "" {
		uid, gid, err := lookupOwner(h.owner)
		if err != nil {
			return badFlag("handover-owner", "--handover-owner=%s: %v", h.owner, err)
		}
		hc.cfg.UID, hc.cfg.GID = uid, gid
		if uid >= 0 {
			uids[uint32(uid)] = true
		}
		if gid >= 0 {
			gids[uint32(gid)] = true
		}
	}
	if h.allow != "" {
		// An explicit list replaces the default but for root.
		uids, gids = map[uint32]bool{0: true}, map[uint32]bool{}
		for _, a := range strings.Split(h.allow, ",") {
			a = strings.TrimSpace(a)
			if g, ok := strings.CutPrefix(a, ":"); ok {
				gid, err := lookupGroup(g)
				if err != nil {
					return badFlag("handover-allow", "--handover-allow=%s: %v", h.allow, err)
				}
				gids[uint32(gid)] = true
				continue
			}
			uid, err := lookupUser(a)
			if err != nil {
				return badFlag("handover-allow", "--handover-allow=%s: %v", h.allow, err)
			}
			uids[uint32(uid)] = true
		}
	}
	hc.cfg.Allow = func(uid, gid uint32) bool { return uids[uid] || gids[gid] }
	hc.allowed = describeAllowed(uids, gids)
	c.handover = hc
	c.handoverOnly = !set["port"] && !set["address"]
	return nil
}

func describeAllowed(uids, gids map[uint32]bool) string {
	var parts []string
	for u := range uids {
		parts = append(parts, "uid "+strconv.Itoa(int(u)))
	}
	for g := range gids {
		parts = append(parts, "gid "+strconv.Itoa(int(g)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// lookupOwner resolves USER[:GROUP]; -1 for a part not given. A user's
// own group is not implied: the group is only what GROUP says.
func lookupOwner(s string) (uid, gid int, err error) {
	u, g, _ := strings.Cut(s, ":")
	uid, gid = -1, -1
	if u != "" {
		if uid, err = lookupUser(u); err != nil {
			return 0, 0, err
		}
	}
	if g != "" {
		if gid, err = lookupGroup(g); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

func lookupUser(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, fmt.Errorf("no user %q", s)
	}
	return strconv.Atoi(u.Uid)
}

func lookupGroup(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("no group %q", s)
	}
	return strconv.Atoi(g.Gid)
}

// listenHandover makes the hand-over socket of hc.
func listenHandover(hc *handoverConfig, log *slog.Logger) (net.Listener, error) {
	cfg := hc.cfg
	cfg.Log = log
	l, err := handover.Listen(hc.path, cfg)
	if err != nil {
		return nil, err
	}
	log.Info("taking connections handed over", "socket", hc.path, "mode", fmt.Sprintf("%04o", cfg.Mode), "allowed", hc.allowed)
	return l, nil
}

// handOverCommand says whether the command line runs the hand-over
// program rather than the daemon, and returns it: under a name starting
// with nph- (a symlink in boa's cgi-bin) or wsbridge-handover, the socket
// from $WSBRIDGE_HANDOVER or the default; or with --handover-send=PATH as
// the first argument (a flag: never a program called "handover").
func handOverCommand(args []string, getenv func(string) string) (run func(stderr io.Writer) int, ok bool) {
	name := filepath.Base(args[0])
	socket, timeout := "", handover.DefaultTimeout
	switch {
	case strings.HasPrefix(name, "nph-") || strings.HasPrefix(name, "wsbridge-handover"):
		// Arguments are ignored: boa makes a query with no '=' into
		// arguments, which would let a client choose the socket.
		if socket = getenv("WSBRIDGE_HANDOVER"); socket == "" {
			socket = handover.DefaultSocket
		}
	case len(args) > 1 && (strings.HasPrefix(args[1], "--handover-send") || strings.HasPrefix(args[1], "-handover-send")):
		fs := flag.NewFlagSet("wsbridge --handover-send", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.StringVar(&socket, "handover-send", "", "")
		fs.DurationVar(&timeout, "handover-timeout", timeout, "")
		if err := fs.Parse(args[1:]); err != nil || socket == "" || fs.NArg() > 0 || timeout <= 0 {
			return func(stderr io.Writer) int {
				fmt.Fprintln(stderr, "wsbridge: usage: wsbridge --handover-send=SOCKET [--handover-timeout=5s] (run as a CGI by the web server)")
				return 2
			}, true
		}
	default:
		return nil, false
	}
	return func(stderr io.Writer) int {
		return handover.Hand(socket, timeout, os.Environ(), stderr)
	}, true
}
