package framing

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestUTF8(t *testing.T) {
	tests := []struct {
		name string
		in   string
		bad  int // index of the byte that makes the stream invalid; -1: none
		done bool
	}{
		{"empty", "", -1, true},
		{"ascii", "hello, world", -1, true},
		{"two-byte", "é", -1, true},
		{"three-byte", "€", -1, true},
		{"four-byte", "😀", -1, true},
		{"mixed", "κόσμε 日本 😀 a", -1, true},
		{"U+0080, U+07FF, U+0800, U+FFFF, U+10000", "\u0080\u07ff\u0800\uffff\U00010000", -1, true},
		{"max code point", "\xf4\x8f\xbf\xbf", -1, true},
		{"last before surrogates", "\xed\x9f\xbf", -1, true},
		{"first after surrogates", "\xee\x80\x80", -1, true},
		{"U+FFFD", "\xef\xbf\xbd", -1, true},
		{"cut short: two-byte", "a\xc3", -1, false},
		{"cut short: three-byte", "a\xe2\x82", -1, false},
		{"cut short: four-byte", "a\xf0\x9f\x98", -1, false},
		{"above U+10FFFF", "a\xf4\x90\x80\x80", 2, false},
		{"F5 lead", "\xf5\x80\x80\x80", 0, false},
		{"FF", "ab\xff", 2, false},
		{"C0 lead (overlong)", "\xc0\xaf", 0, false},
		{"C1 lead (overlong)", "\xc1\xbf", 0, false},
		{"overlong three-byte", "\xe0\x80\xaf", 1, false},
		{"overlong three-byte, high", "\xe0\x9f\xbf", 1, false},
		{"overlong four-byte", "\xf0\x80\x80\xaf", 1, false},
		{"overlong four-byte, high", "\xf0\x8f\xbf\xbf", 1, false},
		{"high surrogate", "\xed\xa0\x80", 1, false},
		{"low surrogate", "\xed\xbf\xbf", 1, false},
		{"lone continuation", "a\x80", 1, false},
		{"continuation too many", "é\xa9", 2, false},
		{"ASCII inside a sequence", "\xe2\x82A", 2, false},
		{"lead inside a sequence", "\xe2\xe2\x82\xac", 1, false},
		{"Autobahn 6.4.1", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", 12, false},
		{"Autobahn 6.4.2", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited", 12, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			if utf8.Valid(in) != tt.done {
				t.Fatalf("bad case: utf8.Valid = %t", !tt.done)
			}
			// Whole.
			var v UTF8
			if ok := v.Write(in); ok != (tt.bad < 0) || v.Done() != tt.done {
				t.Fatalf("whole: Write = %t, Done = %t", ok, v.Done())
			}
			// Byte by byte: fails exactly at the bad byte.
			v.Reset()
			for i := range in {
				if ok := v.Write(in[i : i+1]); ok != (tt.bad < 0 || i < tt.bad) {
					t.Fatalf("byte %d: Write = %t", i, ok)
				}
			}
			if v.Done() != tt.done {
				t.Fatalf("byte by byte: Done = %t", v.Done())
			}
			// Cut in three at every pair of places.
			for i := 0; i <= len(in); i++ {
				for j := i; j <= len(in); j++ {
					v.Reset()
					for _, r := range [][2]int{{0, i}, {i, j}, {j, len(in)}} {
						ok := v.Write(in[r[0]:r[1]])
						if want := tt.bad < 0 || r[1] <= tt.bad; ok != want {
							t.Fatalf("cut at %d, %d: Write(in[%d:%d]) = %t", i, j, r[0], r[1], ok)
						}
					}
					if v.Done() != tt.done {
						t.Fatalf("cut at %d, %d: Done = %t", i, j, v.Done())
					}
				}
			}
		})
	}
}

func TestUTF8StickyAndReset(t *testing.T) {
	var v UTF8
	if v.Write([]byte("\xff")) || v.Write([]byte("ok")) || v.Done() {
		t.Fatal("a failure did not stick")
	}
	v.Reset()
	if !v.Write([]byte("ok")) || !v.Done() {
		t.Fatal("Reset did not clear the failure")
	}
	v.Write([]byte("\xe2"))
	v.Reset()
	if !v.Write([]byte("A")) || !v.Done() {
		t.Fatal("Reset did not clear a sequence in progress")
	}
}

func TestUTF8NoAlloc(t *testing.T) {
	text := []byte(strings.Repeat("mixed ünïcödé €𝄞 ", 100))
	allocs := testing.AllocsPerRun(100, func() {
		var v UTF8
		v.Write(text[:7])
		v.Write(text[7:])
		v.Done()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

func TestSeq(t *testing.T) {
	tests := []struct {
		name string
		in   string
		k    int
		st   seqStatus
	}{
		{"ascii", "a\xff", 1, seqValid},
		{"four-byte", "😀a", 4, seqValid},
		{"lone continuation", "\x80", 1, seqInvalid},
		{"bad lead", "\xf5\x80", 1, seqInvalid},
		{"broken after two", "\xf1\x80\x80\xe1", 3, seqInvalid},
		{"broken after one", "\xe1\x80\xc2", 2, seqInvalid},
		{"surrogate", "\xed\xa0", 1, seqInvalid},
		{"short", "\xf0\x9f\x98", 3, seqShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, st := seq([]byte(tt.in)); k != tt.k || st != tt.st {
				t.Fatalf("seq = %d, %d; want %d, %d", k, st, tt.k, tt.st)
			}
		})
	}
}
