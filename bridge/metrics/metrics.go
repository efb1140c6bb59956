package metrics

import (
	"strconv"
	"strings"
	"sync/atomic"
)

// Counter is a count that only goes up, safe for concurrent use. Its
// zero value is zero; it must not be copied once used.
type Counter struct{ n atomic.Uint64 }

func (c *Counter) Inc()         { c.n.Add(1) }
func (c *Counter) Add(n uint64) { c.n.Add(n) }
func (c *Counter) Load() uint64 { return c.n.Load() }

// Type is a family's TYPE line.
type Type string

const (
	TypeCounter Type = "counter"
	TypeGauge   Type = "gauge"
)

// ContentType is the Content-Type of a scrape's answer.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Text is an exposition being written: Family, then its samples, for each
// family. The zero value is empty and ready.
type Text struct{ b []byte }

// Family starts the family name: its HELP and TYPE lines. Every sample
// of it must follow, before the next family. A name that is not a valid
// metric name panics: names are the program's, never the input's.
func (t *Text) Family(name, help string, typ Type) {
	if !validName(name, true) {
		panic("metrics: invalid metric name " + strconv.Quote(name))
	}
	t.b = append(t.b, "# HELP "...)
	t.b = append(t.b, name...)
	t.b = append(t.b, ' ')
	t.b = appendEscaped(t.b, help, false)
	t.b = append(t.b, "\n# TYPE "...)
	t.b = append(t.b, name...)
	t.b = append(t.b, ' ')
	t.b = append(t.b, typ...)
	t.b = append(t.b, '\n')
}

// Sample writes one sample of the family begun last: name (the family's,
// or for a summary or histogram one of its own) with labels, pairs of a
// label name and its value, and v.
func (t *Text) Sample(name string, v uint64, labels ...string) {
	t.sample(name, labels)
	t.b = strconv.AppendUint(t.b, v, 10)
	t.b = append(t.b, '\n')
}

// Gauge is Sample for a value that may be negative.
func (t *Text) Gauge(name string, v int64, labels ...string) {
	t.sample(name, labels)
	t.b = strconv.AppendInt(t.b, v, 10)
	t.b = append(t.b, '\n')
}

func (t *Text) sample(name string, labels []string) {
	if len(labels)%2 != 0 {
		panic("metrics: labels come in name, value pairs")
	}
	t.b = append(t.b, name...)
	if len(labels) > 0 {
		t.b = append(t.b, '{')
		for i := 0; i < len(labels); i += 2 {
			if !validName(labels[i], false) {
				panic("metrics: invalid label name " + strconv.Quote(labels[i]))
			}
			if i > 0 {
				t.b = append(t.b, ',')
			}
			t.b = append(t.b, labels[i]...)
			t.b = append(t.b, `="`...)
			t.b = appendEscaped(t.b, labels[i+1], true)
			t.b = append(t.b, '"')
		}
		t.b = append(t.b, '}')
	}
	t.b = append(t.b, ' ')
}

// Bytes returns the exposition written so far.
func (t *Text) Bytes() []byte { return t.b }

// appendEscaped escapes what the format says: a backslash and a line feed
// in HELP text, and a double quote too in a label value.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// validName reports whether s is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)
// or, without colons, a label name.
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' || colon && c == ':'
		if !ok {
			return false
		}
	}
	return !strings.HasPrefix(s, "__") || colon
}
