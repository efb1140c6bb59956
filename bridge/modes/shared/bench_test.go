package shared

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/modes"
	"github.com/wsbridge/wsbridge/bridge/wsconn"
	"github.com/wsbridge/wsbridge/framing"
)

// batches are what one read of a shared child's stdout gives the fan-out:
// about 64 KiB of whole messages of each size (under the 128 KiB a
// broadcast reads at most with the default --queue).
var batches = []struct {
	size, n int
}{{16, framing.MaxBatch}, {1 << 10, 64}, {64 << 10, 1}}

func batch(size, n int) []framing.Piece {
	data := bytes.Repeat([]byte("z"), size)
	pieces := make([]framing.Piece, n)
	for i := range pieces {
		pieces[i] = framing.Piece{Data: data, Kind: framing.Text, First: true, Final: true}
	}
	return pieces
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkNewBlob frames one batch into a blob, as a broadcast does once
// for every member of the same Wire, and gives it back.
func BenchmarkNewBlob(b *testing.B) {
	for _, bc := range batches {
		b.Run(fmt.Sprintf("%s-x%d", sizeName(bc.size), bc.n), func(b *testing.B) {
			pieces := batch(bc.size, bc.n)
			b.SetBytes(int64(bc.size * bc.n))
			b.ReportAllocs()
			for b.Loop() {
				bl := newBlob(wsconn.Wire{}, pieces)
				if bl.messages != bc.n {
					b.Fatalf("blob of %d messages, want %d", bl.messages, bc.n)
				}
				bl.release()
			}
		})
	}
}

// benchHub returns a hub with no child and n members, each a WebSocket
// connection over loopback TCP whose client a goroutine drains. The
// members are made as Join makes them, less the input pump: the
// benchmark drives only the fan-out.
func benchHub(b *testing.B, n int) *Hub {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	host := &modes.Host{Log: slog.New(slog.DiscardHandler)}
	h := New(host, &modes.Program{Path: "/bench"}, Options{Queue: 256 << 10}, modes.Assembler{})
	cfg := &wsconn.Config{ReadBuffer: 4096, CloseTimeout: time.Second}
	for i := range n {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, client) }()
		b.Cleanup(func() {
			server.Close()
			client.Close()
		})
		c := wsconn.New(server, cfg, nil)
		m := &member{h: h, c: c, id: uint32(i + 1), sid: uint64(i + 1), finish: func() {}}
		m.live.Store(1) // the input pump's, which never runs
		c.LimitUnsent()
		h.members[m.id] = m
	}
	return h
}

// benchPace holds the benchmark's fan-out until every member has less
// than half of --queue queued. The real one (Hub.waitPace) waits only for
// the fastest and cuts off members a whole --queue behind it; on a busy
// machine some drain goroutine always lags, and the benchmark is of the
// fan-out's cost, not of who gets cut.
func (h *Hub) benchPace(b *testing.B) {
	for {
		behind := false
		for _, m := range h.members {
			m.qmu.Lock()
			behind = behind || m.queued >= h.lowWater()
			m.qmu.Unlock()
		}
		if !behind {
			h.ref, _ = h.pace()
			return
		}
		select {
		case <-h.paceWake: // a member fell below the low-water mark
		case <-time.After(5 * time.Second):
			b.Fatal("the members took nothing for 5s")
		}
	}
}

// BenchmarkBroadcast fans one batch out to every member: framed once,
// queued for each and written to their sockets without blocking, or by
// a drain goroutine once a socket is full.
func BenchmarkBroadcast(b *testing.B) {
	for _, members := range []int{1, 16, 64} {
		for _, bc := range batches {
			b.Run(fmt.Sprintf("members=%d/%s-x%d", members, sizeName(bc.size), bc.n), func(b *testing.B) {
				h := benchHub(b, members)
				pieces := batch(bc.size, bc.n)
				b.SetBytes(int64(bc.size * bc.n))
				b.ReportAllocs()
				for b.Loop() {
					h.benchPace(b)
					h.broadcast(pieces)
				}
				b.StopTimer()
				for _, m := range h.members {
					m.qmu.Lock()
					dead, code := m.dead, m.closeCode
					m.qmu.Unlock()
					if dead || code != 0 {
						b.Fatalf("member %d was cut off (close %d) by the benchmark's own pace", m.id, code)
					}
				}
			})
		}
	}
}
