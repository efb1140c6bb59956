package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"
)

// flagSyntaxError rewrites an error of fs.Parse. The flag package's own
// errors name flags with one dash and say "parse error" for a bad number;
// this says what a user of wsbridge needs, with the flag as they typed it.
// (Matched by hand, not with regexp, which would add 100 KB to the board
// binaries.)
func flagSyntaxError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return unknownFlag(fs, strings.TrimLeft(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		name = strings.TrimLeft(name, "-")
		return fmt.Errorf("--%s needs a value: --%s=VALUE (see wsbridge --help)", name, name)
	}
	// invalid value "V" for flag -N: WHY, or invalid boolean value "V" for -N: WHY
	if rest, ok := strings.CutPrefix(msg, "invalid "); ok {
		rest = strings.TrimPrefix(rest, "boolean ")
		if rest, ok = strings.CutPrefix(rest, "value "); ok {
			if i := strings.LastIndex(rest, `" for `); i > 0 && rest[0] == '"' {
				value, after := rest[1:i], strings.TrimPrefix(rest[i+len(`" for `):], "flag ")
				if name, why, ok := strings.Cut(strings.TrimLeft(after, "-"), ": "); ok {
					if f := fs.Lookup(name); f != nil {
						why = valueError(f, errors.New(why)).Error()
					}
					return fmt.Errorf("--%s=%s: %s", name, value, why)
				}
			}
		}
	}
	return fmt.Errorf("%v (see wsbridge --help)", err)
}

// unknownFlag says a flag does not exist, and which one it was probably
// meant to be.
func unknownFlag(fs *flag.FlagSet, name string) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if s := suggest(name, names); s != "" {
		return fmt.Errorf("unknown flag --%s: did you mean --%s? (see wsbridge --help)", name, s)
	}
	return fmt.Errorf("unknown flag --%s (see wsbridge --help)", name)
}

// valueError says what a flag wants when Set refused a value: the flag
// package's "parse error" says nothing of that. Values of wsbridge's own
// types (sizes, --shared) already say it.
func valueError(f *flag.Flag, err error) error {
	if f.Name == "port" {
		return errors.New("not a port number: want 0 to 65535")
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, uint:
			return errors.New("want a whole number")
		case time.Duration:
			return errors.New("want a duration such as 500ms, 10s or 1m30s")
		case bool:
			return errors.New("want true or false")
		}
	}
	return err
}

// suggest returns the name among names closest to typed, if it is close
// enough to be a typing slip: at most two edits (one for short names), or
// typed is a prefix of exactly one name. "" when nothing is that close.
func suggest(typed string, names []string) string {
	typed = strings.ToLower(typed)
	best, bestDist := "", 3
	if len(typed) <= 3 {
		bestDist = 2
	}
	var prefixed []string
	for _, n := range names {
		if d := editDistance(typed, n); d < bestDist {
			best, bestDist = n, d
		}
		if len(typed) >= 3 && strings.HasPrefix(n, typed) {
			prefixed = append(prefixed, n)
		}
	}
	if best == "" && len(prefixed) == 1 {
		best = prefixed[0]
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and swaps of two neighbours each
// count one, so "prot" is one swap from "port".
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// maxCloseMS bounds --closems: an hour per wait is already more than any
// program needs, and a larger value would overflow the wait's duration.
const maxCloseMS = 3_600_000

// checkAddress refuses an --address that cannot be listened on, before
// anything starts: a malformed IP literal (256.1.1.1), a unix socket path,
// or a host name that does not resolve.
func checkAddress(a string) error {
	host := strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
	if net.ParseIP(host) != nil {
		return nil
	}
	switch {
	case strings.HasPrefix(a, "unix:") || strings.HasPrefix(a, "/"):
		return errors.New("unix sockets are not supported yet: want an IP address or a host name")
	case strings.Trim(host, "0123456789.") == "":
		return errors.New("not an IPv4 address (four numbers from 0 to 255)")
	case strings.Contains(host, ":"):
		return errors.New("not an IPv6 address (write it as ::1 or [::1])")
	case !validHostName(host):
		return errors.New("not an IP address or a host name")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		return fmt.Errorf("host name does not resolve: %w", err)
	}
	return nil
}

// validHostName reports whether s is a DNS name: labels of letters, digits
// and hyphens, not starting or ending with a hyphen.
func validHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkFraming refuses a framing that does not exist, or mux without the
// shared mode, in the user's words.
func checkFraming(name string, shared bool) error {
	switch name {
	case "", "line", "raw", "len32":
		return nil
	case "mux":
		if !shared {
			return errors.New("mux addresses the clients of one shared program: add --shared")
		}
		return nil
	}
	return errors.New("want line, raw, len32 or mux")
}

// checkDir refuses a directory flag naming something that is not a
// directory ("" is unset). Stat follows links and never opens the path,
// so a FIFO cannot block the start.
func checkDir(path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such directory")
	case errors.Is(err, fs.ErrPermission):
		return errors.New("permission denied")
	case err != nil:
		return err
	case !st.IsDir():
		return errors.New("not a directory")
	}
	return nil
}
