package main

// The floor: an echo server with no child process, the best a WebSocket
// server can do on this machine. It runs in a process of its own (wsbench
// -serve-floor -port P) so its CPU and memory are measured like the
// others'. It is written the most efficient straightforward way with
// gobwas/ws at the frame level: a goroutine per connection; pooled
// buffers taken only once the socket has data, so an idle connection holds
// none; each data frame echoed unmasked as it arrives, its payload
// unmasked in place in the read buffer; replies gathered in a buffered
// writer that is flushed once per batch of frames read, not once per
// frame.

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"syscall"

	"github.com/gobwas/pool/pbufio"
	"github.com/gobwas/ws"
)

// floorBuffer sizes the pooled reader and writer of a busy connection.
const floorBuffer = 64 << 10

// serveFloor listens on 127.0.0.1:port and echoes until killed.
func serveFloor(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	for {
		conn, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go floorConn(conn.(*net.TCPConn))
	}
}

// floorState is a connection's scratch for frame headers: allocated once,
// as gobwas/ws's *Buffer functions allow.
type floorState struct {
	rh [ws.MaxHeaderSize]byte
	wh [ws.MaxHeaderSize]byte
}

func floorConn(conn *net.TCPConn) {
	defer conn.Close()
	if _, err := ws.Upgrade(conn); err != nil {
		return
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	st := new(floorState)
	for waitReadable(rc) {
		br := pbufio.GetReader(conn, floorBuffer)
		bw := pbufio.GetWriter(conn, floorBuffer)
		more := st.echoBatch(br, bw)
		if bw.Flush() != nil {
			more = false
		}
		pbufio.PutReader(br)
		pbufio.PutWriter(bw)
		if !more {
			return
		}
	}
}

// waitReadable blocks, holding no buffer, until the socket has data. It
// returns false at end of stream or on error.
func waitReadable(rc syscall.RawConn) bool {
	var (
		one  [1]byte
		n    int
		rerr error
	)
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, _, rerr = syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK)
			if rerr != syscall.EINTR {
				break
			}
		}
		return rerr != syscall.EAGAIN
	})
	return err == nil && rerr == nil && n > 0
}

// echoBatch echoes frames until the reader has nothing buffered, so that
// the caller's flush sends every reply to one read in one write. It
// returns false when the connection is over.
func (st *floorState) echoBatch(br *bufio.Reader, bw *bufio.Writer) bool {
	for {
		h, err := ws.ReadHeaderBuffer(br, st.rh[:])
		if err != nil {
			return false
		}
		switch h.OpCode {
		case ws.OpClose, ws.OpPing:
			if h.Length > 125 {
				return false
			}
			p, err := br.Peek(int(h.Length))
			if err != nil {
				return false
			}
			ws.Cipher(p, h.Mask, 0)
			op := ws.OpPong
			if h.OpCode == ws.OpClose {
				op = ws.OpClose
			}
			_ = ws.WriteHeaderBuffer(bw, ws.Header{Fin: true, OpCode: op, Length: h.Length}, st.wh[:])
			_, _ = bw.Write(p)
			_, _ = br.Discard(len(p))
			if op == ws.OpClose {
				_ = bw.Flush()
				return false
			}
		case ws.OpPong:
			if _, err := br.Discard(int(h.Length)); err != nil {
				return false
			}
		default:
			if !h.Masked {
				return false // RFC 6455: a client frame must be masked
			}
			out := h
			out.Masked, out.Mask = false, [4]byte{}
			if ws.WriteHeaderBuffer(bw, out, st.wh[:]) != nil {
				return false
			}
			for off := int64(0); off < h.Length; {
				p, err := br.Peek(int(min(h.Length-off, int64(br.Size()))))
				if err != nil {
					return false
				}
				ws.Cipher(p, h.Mask, int(off))
				if _, err := bw.Write(p); err != nil {
					return false
				}
				_, _ = br.Discard(len(p))
				off += int64(len(p))
			}
		}
		if br.Buffered() == 0 {
			return true
		}
	}
}
