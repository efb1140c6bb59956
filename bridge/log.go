package bridge

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// ParseHeader parses a "Name: value" header as the --header flags take it.
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" {
		return "", "", fmt.Errorf("header %q: want \"Name: value\"", s)
	}
	for i := 0; i < len(name); i++ {
		if !http1.IsTokenChar(name[i]) {
			return "", "", fmt.Errorf("header %q: %q is not a valid header name", s, name)
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", "", fmt.Errorf("header %q: control character in value", s)
		}
	}
	return name, value, nil
}

// Log levels, after websocketd's: debug < trace < access < info < error < fatal.
const (
	LevelDebug  = slog.Level(-8)
	LevelTrace  = slog.LevelDebug
	LevelAccess = slog.Level(-2)
	LevelInfo   = slog.LevelInfo
	LevelError  = slog.LevelError
	LevelFatal  = slog.Level(12)
)

// ParseLevel maps a --loglevel name onto a slog level.
func ParseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(name) {
	case "debug":
		return LevelDebug, nil
	case "trace":
		return LevelTrace, nil
	case "access", "":
		return LevelAccess, nil
	case "info":
		return LevelInfo, nil
	case "error":
		return LevelError, nil
	case "fatal":
		return LevelFatal, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, trace, access, info, error or fatal)", name)
}
