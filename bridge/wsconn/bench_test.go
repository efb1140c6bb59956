package wsconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// benchSizes are the message sizes the benchmarks run over.
var benchSizes = []int{16, 1 << 10, 64 << 10}

func sizeName(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// loopback returns both ends of a loopback TCP connection: the benchmarks
// read and write a real socket, as the bridge does (net.Pipe has no
// descriptor, so it would take the Reader's fallback path instead).
func loopback(b testing.TB) (server, client net.Conn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() {
		server.Close()
		client.Close()
	})
	return server, client
}

// maskedFrame returns a masked client frame, as a browser sends.
func maskedFrame(b *testing.B, op ws.OpCode, payload []byte) []byte {
	b.Helper()
	p := bytes.Clone(payload)
	mask := [4]byte{1, 2, 3, 4}
	ws.Cipher(p, mask, 0)
	var buf bytes.Buffer
	if err := ws.WriteHeader(&buf, ws.Header{Fin: true, OpCode: op, Masked: true, Mask: mask, Length: int64(len(p))}); err != nil {
		b.Fatal(err)
	}
	buf.Write(p)
	return buf.Bytes()
}

// BenchmarkReceive reads b.N masked binary messages from a loopback
// socket: unmasking in place and cutting into pieces, without a copy or
// an allocation per message.
func BenchmarkReceive(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			server, client := loopback(b)
			go func() { _, _ = io.Copy(io.Discard, client) }() // the close reply
			cfg := Config{ReadBuffer: 64 << 10, CloseTimeout: time.Second}
			c := New(server, &cfg, nil)
			frame := maskedFrame(b, ws.OpBinary, bytes.Repeat([]byte("x"), size))
			perWrite := max(1, (64<<10)/len(frame))
			chunk := bytes.Repeat(frame, perWrite)
			closeFrame := maskedFrame(b, ws.OpClose, []byte{3, 232})

			// Warm the pools with a few messages first.
			const warm = 64
			n := b.N + warm
			go func() {
				for left := n; left > 0; {
					k := min(left, perWrite)
					if _, err := client.Write(chunk[:k*len(frame)]); err != nil {
						return
					}
					left -= k
				}
				_, _ = client.Write(closeFrame)
			}()
			got, bytesIn := 0, 0
			deliver := func(ps []framing.Piece) error {
				for _, p := range ps {
					bytesIn += len(p.Data)
					if p.Final {
						got++
						if got == warm {
							b.ResetTimer()
						}
					}
				}
				return nil
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			err := c.Receive(deliver)
			b.StopTimer()
			var ce *transport.CloseError
			if !errors.As(err, &ce) || ce.Code != transport.CloseNormal {
				b.Fatalf("Receive = %v, want the client's close", err)
			}
			if got != n || bytesIn != n*size {
				b.Fatalf("received %d messages, %d bytes; want %d, %d", got, bytesIn, n, n*size)
			}
		})
	}
}

// BenchmarkSend sends batches of whole messages to a loopback socket
// drained by a goroutine: one writev of headers and borrowed data a
// batch.
func BenchmarkSend(b *testing.B) {
	for _, size := range benchSizes {
		batch := max(1, (16<<10)/size)
		b.Run(fmt.Sprintf("%s-x%d", sizeName(size), batch), func(b *testing.B) {
			server, client := loopback(b)
			drained := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, client)
				drained <- n
			}()
			cfg := Config{ReadBuffer: 4096, CloseTimeout: time.Second}
			c := New(server, &cfg, nil)
			data := bytes.Repeat([]byte("y"), size)
			pieces := make([]framing.Piece, batch)
			for i := range pieces {
				pieces[i] = framing.Piece{Data: data, Kind: framing.Binary, First: true, Final: true}
			}
			b.SetBytes(int64(size * batch))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Send(pieces); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if _, out := c.Counts(); out%int64(size*batch) != 0 || out == 0 {
				b.Fatalf("counted %d bytes out", out)
			}
			server.Close()
			<-drained
		})
	}
}
