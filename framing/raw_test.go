package framing

import (
	"fmt"
	"strings"
	"testing"
)

func TestRawDecoderSteps(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "buf is one message", steps: []step{
			{buf: "a\nb\x00\xff", want: `binary first final "a\nb\x00\xff"`, n: 5},
		}},
		{name: "full or not", steps: []step{
			{buf: "ab", full: true, want: `binary first final "ab"`, n: 2},
			{buf: "c", eof: true, want: `binary first final "c"`, n: 1},
		}},
		{name: "nothing at eof with empty buf", steps: []step{
			{buf: "", eof: true, want: "", n: 0},
		}},
		{name: "nothing when dst is full", steps: []step{
			{buf: "ab", cap: -1, want: "", n: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, NewRawDecoder(), tt.steps)
		})
	}
}

// TestRawDecoder: whatever the buffers, the messages concatenate to the
// stream, none is empty, and a stream read at once is one message.
func TestRawDecoder(t *testing.T) {
	stream := []byte("raw\x00bytes\nand\xffmore")
	for _, s := range append(setups(stream), whole(stream)) {
		got, err := pump(t, NewRawDecoder(), stream, s)
		if err != nil {
			t.Fatal(err)
		}
		checkRaw(t, s, stream, got)
	}
	if got, _ := pump(t, NewRawDecoder(), stream, whole(stream)); len(got) != 1 {
		t.Fatalf("whole stream: %d messages", len(got))
	}
}

func checkRaw(t testing.TB, s setup, stream []byte, got []msg) {
	t.Helper()
	var all strings.Builder
	for _, m := range got {
		if m.Kind != Binary || m.Data == "" {
			t.Fatalf("%v: message %v", s, m)
		}
		all.WriteString(m.Data)
	}
	if all.String() != string(stream) {
		t.Fatalf("%v: messages join to %q, want %q", s, all.String(), stream)
	}
}

func TestRawEncoder(t *testing.T) {
	tests := []struct {
		name string
		ps   []Piece
		want string
	}{
		{"whole", []Piece{{Data: []byte("a\n"), Kind: Text, First: true, Final: true}}, "a\n"},
		{"fragments", []Piece{{Data: []byte("a"), Kind: Binary, First: true}, {Data: []byte("b"), Kind: Binary, Final: true}}, "ab"},
		{"messages run together", []Piece{{Data: []byte("a"), First: true, Final: true}, {Data: []byte("b"), First: true, Final: true}}, "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encode(RawEncoder{}, tt.ps...); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		dec  Decoder
		enc  Encoder
	}{
		{"line", new(LineDecoder), LineEncoder{}},
		{"raw", RawDecoder{}, RawEncoder{}},
		{"len32", new(Len32Decoder), Len32Encoder{}},
		{"mux", new(MuxDecoder), MuxEncoder{}},
	}
	if len(Names) != len(tests) {
		t.Fatalf("Names = %v", Names)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Names[i] != tt.name {
				t.Fatalf("Names[%d] = %q", i, Names[i])
			}
			dec, enc, err := New(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if dt, wt := typeName(dec), typeName(tt.dec); dt != wt || enc != tt.enc {
				t.Fatalf("New = %s, %T; want %s, %T", dt, enc, wt, tt.enc)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		if _, _, err := New("json"); err == nil || !strings.Contains(err.Error(), `"json"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("fresh state", func(t *testing.T) {
		a, _, _ := New("line")
		b, _, _ := New("line")
		if a == b {
			t.Fatal("New returned a shared line decoder")
		}
	})
}
