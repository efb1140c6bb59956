package main

// The config file (--config=FILE): INI-style, as hostapd.conf, smb.conf,
// systemd units and php.ini are, since that is what people on embedded
// Linux already edit by hand and generate from shell scripts. Its keys are
// the long flag names, parsed by the same flag.Values as the command line.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/wsbridge/wsbridge/bridge"
)

// maxConfigSize bounds a config file: anything larger is a mistake (or
// /dev/zero).
const maxConfigSize = 1 << 20

// iniFile is a config file as written: its settings in order, the daemon's
// first, then each section's. It is the syntax only; fileConfig gives it a
// meaning.
type iniFile struct {
	daemon   []setting
	sections []section
}

// setting is one key = value line.
type setting struct {
	key, value string
	line       int
}

// section is an [endpoint] or [endpoint /path] section.
type section struct {
	path     string // "" for [endpoint], which serves every path
	line     int
	settings []setting
}

// configError is an error at a line of a config file.
func configError(name string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
}

// parseINI reads the syntax of a config file: "key = value" lines,
// "[endpoint]" and "[endpoint /path]" sections, blank lines, and comment
// lines whose first non-blank character is # or ;. A # or ; later in a line
// is part of the value, as in hostapd.conf and systemd units: commands and
// headers may hold them. name is the file's name for messages.
func parseINI(name string, data []byte) (iniFile, error) {
	var f iniFile
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM some editors write
	cur := &f.daemon
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.ContainsRune(line, 0):
			return f, configError(name, n, "NUL byte")
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return f, configError(name, n, "section header %q has no closing ]", line)
			}
			words := strings.Fields(line[1 : len(line)-1])
			if len(words) == 0 || words[0] != "endpoint" || len(words) > 2 {
				return f, configError(name, n, "unknown section %s: want [endpoint] (every path) or [endpoint /path]", line)
			}
			s := section{line: n}
			if len(words) == 2 {
				s.path = words[1]
				if !strings.HasPrefix(s.path, "/") || strings.ContainsAny(s.path, "?#") {
					return f, configError(name, n, "[endpoint %s]: the path must start with / and hold no ? or #", s.path)
				}
			}
			for _, o := range f.sections {
				if samePath(o.path, s.path) {
					return f, configError(name, n, "%s again: it is already at line %d", line, o.line)
				}
			}
			f.sections = append(f.sections, s)
			cur = &f.sections[len(f.sections)-1].settings
		default:
			key, value, ok := strings.Cut(line, "=")
			key, value = strings.TrimSpace(key), strings.TrimSpace(value)
			if !ok || key == "" {
				return f, configError(name, n, "want key = value, a [section] or a # comment, not %q", line)
			}
			*cur = append(*cur, setting{key: key, value: value, line: n})
		}
	}
	return f, nil
}

// samePath reports whether two section paths name the same endpoint, as
// the bridge sees them: a trailing slash does not count.
func samePath(a, b string) bool {
	norm := func(p string) string {
		if p == "" {
			return p
		}
		if p = strings.TrimRight(p, "/"); p == "" {
			return "/"
		}
		return p
	}
	return norm(a) == norm(b)
}

// format writes f back as a config file that parses to the same settings.
func (f iniFile) format() []byte {
	var b bytes.Buffer
	for _, s := range f.daemon {
		fmt.Fprintf(&b, "%s = %s\n", s.key, s.value)
	}
	for _, sec := range f.sections {
		if sec.path == "" {
			b.WriteString("\n[endpoint]\n")
		} else {
			fmt.Fprintf(&b, "\n[endpoint %s]\n", sec.path)
		}
		for _, s := range sec.settings {
			fmt.Fprintf(&b, "%s = %s\n", s.key, s.value)
		}
	}
	return b.Bytes()
}

// fileConfig is what a config file says, checked.
type fileConfig struct {
	name      string
	daemon    []setting     // the daemon keys as written, for the merge
	daemonFS  *flag.FlagSet // ... parsed
	endpoints []bridge.Endpoint
	catchAll  int // line of [endpoint], 0: none
}

// readConfig reads and checks the config file at path.
func readConfig(path string) (fileConfig, error) {
	// Opened without blocking, and only a regular file is read: an open
	// of a FIFO with no writer would hang the start.
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fileConfig{}, fmt.Errorf("--config: %w", err)
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil {
		return fileConfig{}, fmt.Errorf("--config: %w", err)
	} else if !st.Mode().IsRegular() {
		return fileConfig{}, fmt.Errorf("--config: %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxConfigSize+1))
	if err != nil {
		return fileConfig{}, fmt.Errorf("--config: %w", err)
	}
	if len(data) > maxConfigSize {
		return fileConfig{}, fmt.Errorf("--config: %s is larger than %d bytes", path, maxConfigSize)
	}
	return loadConfig(path, data)
}

// loadConfig parses and checks a config file named name: every key known
// and in its place, every value valid, every endpoint one the bridge
// accepts and whose program can run. Every error names the file and line.
func loadConfig(name string, data []byte) (fileConfig, error) {
	ini, err := parseINI(name, data)
	if err != nil {
		return fileConfig{}, err
	}
	fc := fileConfig{name: name, daemon: ini.daemon}
	var d daemonFlags
	fc.daemonFS = newFlagSet(d.register)
	if err := fc.setAll(fc.daemonFS, ini.daemon, "at the top of the file", endpointFlagNames, "a per-endpoint key: put it in an [endpoint] section"); err != nil {
		return fc, err
	}
	if err := d.apply(&config{}); err != nil {
		return fc, fc.flagError(err, ini.daemon, 1)
	}
	for _, sec := range ini.sections {
		ep, err := fc.endpoint(sec)
		if err != nil {
			return fc, err
		}
		if sec.path == "" {
			fc.catchAll = sec.line
		}
		fc.endpoints = append(fc.endpoints, ep)
	}
	return fc, nil
}

// daemonKeys are the keys of the top of the file.
var daemonKeys = func() map[string]bool {
	names := map[string]bool{}
	newFlagSet(new(daemonFlags).register).VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}()

// endpoint checks one [endpoint] section and returns its endpoint.
func (fc *fileConfig) endpoint(sec section) (bridge.Endpoint, error) {
	var (
		e       endpointFlags
		command string
	)
	fs := newFlagSet(func(fs *flag.FlagSet) {
		e.register(fs)
		fs.StringVar(&command, "command", "", "")
	})
	header := "[endpoint]"
	if sec.path != "" {
		header = "[endpoint " + sec.path + "]"
	}
	if err := fc.setAll(fs, sec.settings, "in "+header, daemonKeys, "a key of the whole daemon: put it above the first section"); err != nil {
		return bridge.Endpoint{}, err
	}
	var argv []string
	switch {
	case command != "" && e.dir != "":
		return bridge.Endpoint{}, configError(fc.name, sec.line, "%s has both command and dir: give one", header)
	case command == "" && e.dir == "":
		return bridge.Endpoint{}, configError(fc.name, sec.line, "%s has neither command = PROGRAM [ARGS...] nor dir = DIRECTORY", header)
	case command != "":
		var err error
		if argv, err = splitCommand(command); err != nil {
			return bridge.Endpoint{}, configError(fc.name, lineOf(sec.settings, "command", sec.line), "command: %v", err)
		}
	}
	ep, err := e.endpoint(sec.path, argv)
	if err != nil {
		return ep, fc.flagError(err, sec.settings, sec.line)
	}
	if err := (bridge.Options{Endpoints: []bridge.Endpoint{ep}}).Check(); err != nil {
		return ep, configError(fc.name, sec.line, "%v", err)
	}
	if err := checkProgram(ep); err != nil {
		return ep, configError(fc.name, lineOf(sec.settings, "command", sec.line), "%s: %v", header, err)
	}
	return ep, nil
}

// setAll sets each setting on fs. A key of the other kind (misplaced)
// gets the hint where; any other unknown key, a key set twice (unless it
// may repeat) and a bad value are errors at their line.
func (fc *fileConfig) setAll(fs *flag.FlagSet, settings []setting, where string, misplaced map[string]bool, hint string) error {
	first := map[string]int{}
	for _, s := range settings {
		f := fs.Lookup(s.key)
		switch {
		case f == nil && misplaced[s.key]:
			return configError(fc.name, s.line, "%s %s: %s is %s", s.key, where, s.key, hint)
		case f == nil && (slices.Contains(notYet, s.key) || slices.Contains(notYetBool, s.key)):
			return configError(fc.name, s.line, "%s: websocketd flag not supported by this version of wsbridge yet", s.key)
		case f == nil:
			var names []string
			fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
			hint := ""
			if n := suggest(s.key, names); n != "" {
				hint = fmt.Sprintf(": did you mean %s?", n)
			}
			return configError(fc.name, s.line, "unknown key %q %s%s (keys are the long flag names; see wsbridge --help)", s.key, where, hint)
		}
		if _, list := f.Value.(*listFlag); !list {
			if l, dup := first[s.key]; dup {
				return configError(fc.name, s.line, "%s set again: it is already set at line %d", s.key, l)
			}
			first[s.key] = s.line
		}
		if err := setKey(fs, f, s.value); err != nil {
			return configError(fc.name, s.line, "%s = %s: %v", s.key, s.value, err)
		}
	}
	return nil
}

// setKey sets a flag from a config file value. Booleans are yes/no,
// true/false, on/off or 1/0; --shared also takes lazy.
func setKey(fs *flag.FlagSet, f *flag.Flag, value string) error {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		switch strings.ToLower(value) {
		case "yes", "true", "on", "1":
			value = "true"
		case "no", "false", "off", "0":
			value = "false"
		default:
			_, shared := f.Value.(*sharedFlag)
			_, path := f.Value.(*pathFlag)
			switch {
			case shared && strings.EqualFold(value, "lazy"):
				value = "lazy"
			case path && strings.HasPrefix(value, "/"):
				// health = /hc: the path itself
			case path:
				return errors.New("want yes, no or a path starting with /")
			case shared:
				return errors.New("want yes, no or lazy")
			default:
				return errors.New("want yes or no (true/false, on/off, 1/0)")
			}
		}
	}
	if err := fs.Set(f.Name, value); err != nil {
		return valueError(f, err)
	}
	return nil
}

// flagError places an error of daemonFlags.apply or endpointFlags.endpoint
// at the line of the key it is about, else at line.
func (fc *fileConfig) flagError(err error, settings []setting, line int) error {
	var fe *flagError
	if errors.As(err, &fe) {
		line = lineOf(settings, fe.name, line)
	}
	return configError(fc.name, line, "%v", err)
}

// lineOf returns the line of the last setting of key, else def.
func lineOf(settings []setting, key string, def int) int {
	for i := len(settings) - 1; i >= 0; i-- {
		if settings[i].key == key {
			return settings[i].line
		}
	}
	return def
}

// mergeDaemon adds the file's daemon keys to the command line's flags fs,
// where set says which the command line set itself. The two must not
// disagree: a key set in both to different values is an error naming both.
func (fc *fileConfig) mergeDaemon(fs *flag.FlagSet, set map[string]bool) error {
	done := map[string]bool{}
	for _, s := range fc.daemon {
		if done[s.key] {
			continue
		}
		done[s.key] = true
		mine, theirs := fs.Lookup(s.key), fc.daemonFS.Lookup(s.key)
		if set[s.key] {
			if a, b := mine.Value.String(), theirs.Value.String(); a != b {
				return fmt.Errorf("--%s=%s on the command line, but %s = %s at %s:%d: remove one", s.key, a, s.key, b, fc.name, s.line)
			}
			continue
		}
		set[s.key] = true // the file set it: as the command line would
		for _, t := range fc.daemon {
			if t.key == s.key {
				if err := setKey(fs, mine, t.value); err != nil {
					return configError(fc.name, t.line, "%s = %s: %v", t.key, t.value, err) // checked already
				}
			}
		}
	}
	return nil
}

// newFlagSet returns a silent flag set with what register adds.
func newFlagSet(register func(*flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	register(fs)
	return fs
}

// splitCommand splits a command value into words the way a POSIX shell
// does for quoting, and only that: blanks separate words; 'single quotes'
// keep every character; "double quotes" keep every character but \", \\,
// \$ and \`, which lose their backslash; outside quotes a backslash keeps
// the next character. No variables, globbing, ~, redirection or ;.
func splitCommand(s string) ([]string, error) {
	var (
		words []string
		word  strings.Builder
		in    bool // a word has begun (even an empty one: '')
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if in {
				words = append(words, word.String())
				word.Reset()
				in = false
			}
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("a backslash at the end escapes nothing")
			}
			i++
			word.WriteByte(s[i])
			in = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("the ' at column %d is never closed", i+1)
			}
			word.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case c == '"':
			start := i
			for i++; ; i++ {
				if i == len(s) {
					return nil, fmt.Errorf("the \" at column %d is never closed", start+1)
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				word.WriteByte(s[i])
			}
			in = true
		default:
			word.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, word.String())
	}
	if len(words) == 0 || words[0] == "" {
		return nil, errors.New("no program")
	}
	return words, nil
}
