package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/framing"
)

func broadcast(args []string) {
	if len(args) > 0 {
		f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fail(err.Error())
		}
		fmt.Fprintf(f, "%d\n", os.Getpid())
		f.Close()
	}
	r := bufio.NewReaderSize(os.Stdin, 64<<10)
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	fmt.Fprintf(w, "started %d\n", os.Getpid())
	joins := 0
	var pending []string // a "go" waiting for joins
	for {
		if pending != nil && joins >= intArg(pending, 3) {
			floodTo(w, intArg(pending, 1), intArg(pending, 2))
			pending = nil
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				os.Exit(1)
			}
		}
		line, err := r.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			w.Flush()
			return
		}
		if err != nil && err != io.EOF {
			os.Exit(1)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		f := strings.Fields(string(line))
		switch {
		case len(f) == 1 && f[0] == "join":
			joins++
		case len(f) == 3 && f[0] == "go":
			floodTo(w, intArg(f, 1), intArg(f, 2))
		case len(f) == 4 && f[0] == "go":
			pending = f
		case len(f) == 2 && f[0] == "exit":
			w.Flush()
			os.Exit(intArg(f, 1))
		case bytes.HasPrefix(line, []byte("hash ")):
			text := line[len("hash "):]
			fmt.Fprintf(w, "hash %d %x\n", len(text), sha256.Sum256(text))
		default:
			fmt.Fprintf(w, "echo: %s\n", line)
		}
	}
}

// mux serves the mux framing: see the package comment.
func mux() {
	r := bufio.NewReaderSize(os.Stdin, 64<<10)
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	send := func(k framing.Kind, id uint32, data []byte) {
		w.Write(framing.AppendMuxHeader(nil, k, id, len(data)))
		w.Write(data)
	}
	text := func(id uint32, format string, args ...any) {
		send(framing.Text, id, fmt.Appendf(nil, format, args...))
	}
	closeRec := func(id uint32, spec string) {
		code, reason, _ := strings.Cut(spec, ":")
		n, err := strconv.Atoi(code)
		if err != nil {
			fail("bad close code " + strconv.Quote(code))
		}
		send(framing.Close, id, framing.AppendMuxClose(nil, uint16(n), reason))
	}
	text(0, "started %d", os.Getpid())
	var hdr [framing.MuxHeaderLen]byte
	for {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				os.Exit(1)
			}
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return
			}
			fail("reading a record header: " + err.Error())
		}
		kind, id, size := hdr[0], binary.BigEndian.Uint32(hdr[4:]), binary.BigEndian.Uint32(hdr[8:])
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			fail("reading a record: " + err.Error())
		}
		switch kind {
		case 1: // open
			env := map[string]string{}
			for _, kv := range strings.Split(string(data), "\x00") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
			text(id, "hello %d %s %s", id, env["REMOTE_ADDR"], env["QUERY_STRING"])
		case 4: // close
			code, _, err := framing.ParseMuxClose(data)
			if err != nil {
				fail(err.Error())
			}
			text(0, "left %d %d", id, code)
		case 3: // binary
			send(framing.Binary, id, data)
		case 2: // text
			msg := string(data)
			switch {
			case strings.HasPrefix(msg, "all:"):
				text(0, "%s", msg[len("all:"):])
			case strings.HasPrefix(msg, "to:"):
				to, x, _ := strings.Cut(msg[len("to:"):], ":")
				n, err := strconv.ParseUint(to, 10, 32)
				if err != nil {
					fail("bad id " + strconv.Quote(to))
				}
				text(uint32(n), "%s", x)
			case strings.HasPrefix(msg, "close:"):
				closeRec(id, msg[len("close:"):])
			case strings.HasPrefix(msg, "closeall:"):
				closeRec(0, msg[len("closeall:"):])
			case msg == "exit":
				w.Flush()
				os.Exit(7)
			case msg == "garble":
				w.Flush()
				waitStdinFull()
				os.Stdout.Write(append([]byte{9}, make([]byte, framing.MuxHeaderLen-1)...))
				block()
			default:
				text(id, "echo %d: %s", id, msg)
			}
		default:
			fail(fmt.Sprintf("record of kind %d", kind))
		}
	}
}

// waitStdinFull polls until the pipe on stdin holds as much as it can:
// whoever writes to it is blocked.
func waitStdinFull() {
	for {
		size, err := unix.FcntlInt(0, unix.F_GETPIPE_SZ, 0)
		if err != nil {
			fail(err.Error())
		}
		held, err := unix.IoctlGetInt(0, unix.TIOCINQ)
		if err != nil {
			fail(err.Error())
		}
		if held >= size-4096 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
