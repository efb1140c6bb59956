package http1

import (
	"errors"
	"io"
	"net"
)

// Head errors, each answered with its own status.
var (
	ErrHeadTooLarge = errors.New("request head too large")
	ErrHeadBad      = errors.New("malformed request head")
)

// ReadHead reads from conn into buf, whose first have bytes are read
// already, until it holds a whole request head (up to and including the
// empty line). It returns the head's length; bytes after it in buf[:n]
// arrived early (a pipelined request or frame) and belong to whoever
// takes the connection next.
func ReadHead(conn net.Conn, buf []byte, have int) (head, n int, err error) {
	n = have
	scanned := 0
	for {
		// A terminator can straddle reads: look back three bytes.
		if i := headEnd(buf[:n], max(0, scanned-3)); i > 0 {
			return i, n, nil
		}
		scanned = n
		if n == len(buf) {
			return 0, n, ErrHeadTooLarge
		}
		m, err := conn.Read(buf[n:])
		// A stray CRLF before the request line is allowed (RFC 9112 2.2).
		for n == 0 && m > 0 && (buf[0] == '\r' || buf[0] == '\n') {
			copy(buf, buf[1:m])
			m--
		}
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) && n > 0 {
				return 0, n, ErrHeadBad
			}
			return 0, n, err
		}
	}
}

// headEnd returns the length of the head in b (through "\r\n\r\n" or
// "\n\n"), or 0 when b holds no whole head. from says where to start
// looking, so a head read in pieces is scanned once.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return 0
}

// AwaitRequest reads into buf the first bytes of a kept-alive
// connection's next request, under the deadline the caller set, and
// returns how many. Line ends before a request line are skipped (RFC 9112
// 2.2): they do not start the head's timeout.
func AwaitRequest(conn net.Conn, buf []byte) (int, error) {
	for {
		m, err := conn.Read(buf)
		i := 0
		for i < m && (buf[i] == '\r' || buf[i] == '\n') {
			i++
		}
		if i < m {
			return copy(buf, buf[i:m]), nil
		}
		if err != nil {
			return 0, err
		}
	}
}
