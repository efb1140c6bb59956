package stdio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/framing"
)

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w
}

func newWriter(t *testing.T, w *os.File, name string) *Writer {
	t.Helper()
	_, enc, err := framing.New(name)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := NewWriter(w, enc)
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// readAll reads r until the writer closes, in the background.
func readAll(r *os.File) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- b
	}()
	return out
}

func TestWriterFramings(t *testing.T) {
	hi := framing.Piece{Data: []byte("hi"), Kind: framing.Text, First: true, Final: true, Conn: 1}
	bin := framing.Piece{Data: []byte{1, 2, 3}, Kind: framing.Binary, First: true, Final: true, Conn: 2}
	wor := framing.Piece{Data: []byte("wor"), Kind: framing.Text, First: true}
	ld := framing.Piece{Data: []byte("ld"), Kind: framing.Text, Final: true}
	frag := [][]framing.Piece{{hi, wor}, {ld}}
	whole := [][]framing.Piece{{hi, bin}, {hi}}
	cat := func(bs ...string) []byte { return []byte(strings.Join(bs, "")) }
	for _, tc := range []struct {
		name    string
		batches [][]framing.Piece
		want    []byte
	}{
		{framing.Line, frag, []byte("hi\nworld\n")},
		{framing.Raw, frag, []byte("hiworld")},
		{framing.Len32, frag, cat("\x80\x00\x00\x02hi", "\xc0\x00\x00\x03wor", "\x80\x00\x00\x02ld")},
		{framing.Mux, whole, cat(
			"\x02\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02hi",
			"\x03\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x03\x01\x02\x03",
			"\x02\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02hi")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w := pipe(t)
			sw := newWriter(t, w, tc.name)
			got := readAll(r)
			for _, batch := range tc.batches {
				if err := sw.Write(batch); err != nil {
					t.Fatal(err)
				}
				if want := !batch[len(batch)-1].Final; sw.Mid != want {
					t.Fatalf("after a batch ending Final=%v, Mid = %v", !want, sw.Mid)
				}
			}
			w.Close()
			if b := <-got; !bytes.Equal(b, tc.want) {
				t.Fatalf("the child read %q, want %q", b, tc.want)
			}
		})
	}
}

// TestWriterBlocksUntilRead writes more than a pipe holds: the write
// waits for the child to read, and every byte arrives in order.
func TestWriterBlocksUntilRead(t *testing.T) {
	r, w := pipe(t)
	sw := newWriter(t, w, framing.Len32)
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	done := make(chan error, 1)
	go func() {
		done <- sw.Write([]framing.Piece{{Data: big, Kind: framing.Binary, First: true, Final: true}})
	}()
	select {
	case err := <-done:
		t.Fatalf("a write of 4 MiB to a pipe nobody reads returned %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	got := readAll(r)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
	b := <-got
	if len(b) != 4+len(big) || !bytes.Equal(b[4:], big) || !bytes.Equal(b[:4], []byte{0, 0x40, 0, 0}) {
		t.Fatalf("the child read %d bytes, header % x; want the 4 MiB record", len(b), b[:min(4, len(b))])
	}
	if sw.Mid {
		t.Fatal("Mid set after a whole message")
	}
}

func TestWriterClientGoneWhilePipeFull(t *testing.T) {
	_, w := pipe(t) // the child never reads
	sw := newWriter(t, w, framing.Len32)
	var asked atomic.Int32
	sw.Gone = func() bool { return asked.Add(1) >= 2 } // still there once, then gone
	big := bytes.Repeat([]byte("x"), 4<<20)
	start := time.Now()
	err := sw.Write([]framing.Piece{{Data: big, Kind: framing.Binary, First: true, Final: true}})
	if !errors.Is(err, ErrClientGone) {
		t.Fatalf("Write to a full pipe with the client gone = %v, want ErrClientGone", err)
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("Gone asked %d times, want 2 (a false answer keeps the write waiting)", n)
	}
	if d := time.Since(start); d < 2*Patience || d > 2*Patience+2*time.Second {
		t.Fatalf("gave up after %v, want about %v", d, 2*Patience)
	}
	if !sw.Mid {
		t.Fatal("Mid not set after a write abandoned part-way")
	}
}

func TestWriterBrokenPipe(t *testing.T) {
	r, w := pipe(t)
	sw := newWriter(t, w, framing.Line)
	r.Close()
	err := sw.Write([]framing.Piece{{Data: []byte("x"), First: true, Final: true}})
	if !IsBrokenPipe(err) {
		t.Fatalf("Write to a pipe nobody holds = %v, want a broken pipe", err)
	}
	if sw.Mid {
		t.Fatal("Mid set though nothing was written")
	}
}

// cutAll runs Cut over input as a child's stdout, in one read, and
// returns the pieces, copied.
func cutAll(t *testing.T, name string, input []byte, eof bool) ([]framing.Piece, *Cutter) {
	t.Helper()
	dec, _, err := framing.New(name)
	if err != nil {
		t.Fatal(err)
	}
	o := &Cutter{Dec: dec, Buf: make([]byte, 4096)}
	o.End = copy(o.Buf, input)
	o.EOF = eof
	var got []framing.Piece
	if !o.Cut(func(ps []framing.Piece) {
		for _, p := range ps {
			p.Data = bytes.Clone(p.Data)
			got = append(got, p)
		}
	}) {
		t.Fatalf("Cut reported malformed output: %v", o.Err)
	}
	return got, o
}

func TestCutTruncatedAtEOF(t *testing.T) {
	mux := func(n int, payload string) string {
		return string(framing.AppendMuxHeader(nil, framing.Text, 1, n)) + payload
	}
	for _, tc := range []struct {
		name  string
		input string
	}{
		// A whole record, then one that promises 10 bytes and has 3.
		{framing.Len32, "\x80\x00\x00\x02ok" + "\x80\x00\x00\x0aabc"},
		{framing.Mux, mux(2, "ok") + mux(10, "abc")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, o := cutAll(t, tc.name, []byte(tc.input), true)
			if !errors.Is(o.Err, framing.ErrTruncated) {
				t.Fatalf("Err = %v, want ErrTruncated", o.Err)
			}
			if len(got) != 2 {
				t.Fatalf("got %d pieces, want the whole message and the cut one", len(got))
			}
			if string(got[0].Data) != "ok" || !got[0].First || !got[0].Final {
				t.Fatalf("first piece %+v, want the whole message", got[0])
			}
			last := got[len(got)-1]
			if string(last.Data) != "abc" || last.Final {
				t.Fatalf("last piece %q Final=%v; a message cut short must stay unfinished", last.Data, last.Final)
			}
		})
	}
}

func TestCutLineAtEOFIsWhole(t *testing.T) {
	// A last line without its newline is a whole message, not a cut one.
	got, o := cutAll(t, framing.Line, []byte("one\ntwo"), true)
	if o.Err != nil {
		t.Fatalf("Err = %v", o.Err)
	}
	var msgs []string
	for _, p := range got {
		if p.Final {
			msgs = append(msgs, string(p.Data))
		}
	}
	if len(msgs) != 2 || msgs[0] != "one" || msgs[1] != "two" {
		t.Fatalf("messages %q, want one, two", msgs)
	}
}

func TestCutKeepsPartialForNextRead(t *testing.T) {
	dec, _, _ := framing.New(framing.Len32)
	o := &Cutter{Dec: dec, Buf: make([]byte, 64)}
	input := []byte("\x80\x00\x00\x02ok\x80\x00\x00\x05hel")
	o.End = copy(o.Buf, input)
	var msgs []string
	send := func(ps []framing.Piece) {
		for _, p := range ps {
			if p.Final {
				msgs = append(msgs, string(p.Data))
			}
		}
	}
	if !o.Cut(send) || len(msgs) != 1 {
		t.Fatalf("first Cut: %q, %v", msgs, o.Err)
	}
	if o.End != 7 || string(o.Buf[:o.End]) != "\x80\x00\x00\x05hel" {
		t.Fatalf("the rest of the record was not moved to the front: %q", o.Buf[:o.End])
	}
	o.End += copy(o.Buf[o.End:], "lo")
	if !o.Cut(send) || len(msgs) != 2 || msgs[1] != "hello" || o.End != 0 {
		t.Fatalf("second Cut: %q, End %d, %v", msgs, o.End, o.Err)
	}
}

func TestCutMalformed(t *testing.T) {
	dec, _, _ := framing.New(framing.Mux)
	o := &Cutter{Dec: dec, Buf: make([]byte, 64)}
	o.End = copy(o.Buf, "\x09\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01x")
	if o.Cut(func([]framing.Piece) {}) {
		t.Fatal("Cut accepted a record of an unknown kind")
	}
	if !errors.Is(o.Err, framing.ErrMuxRecord) {
		t.Fatalf("Err = %v, want ErrMuxRecord", o.Err)
	}
}
