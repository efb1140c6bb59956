// Command testchild is the child program of the tests of procs and bridge:
// one static Go binary (no shell, so the tests run anywhere, qemu
// included) whose behaviour is chosen by its first argument. Everything is
// deterministic; a bad mode or argument exits with status 2.
//
// "Echo" below means: copy stdin to stdout line by line, writing each line
// as soon as it is read (a last line without newline is echoed as is),
// and exit 0 at EOF.
//
//	echo                 echo.
//	cat                  copy stdin to stdout byte for byte: 64 KiB reads,
//	                     each written at once, unbuffered; exit 0 at EOF.
//	exit CODE [TEXT]     print TEXT as a line, if given, then exit CODE.
//	partial TEXT         write TEXT without a newline, exit 0.
//	sleep                block until killed, reading nothing.
//	ignore-term          ignore SIGTERM and SIGINT, print "ready", block.
//	grandchild           start a grandchild (testchild sleep, same process
//	                     group, stdin, stdout and stderr on /dev/null, never
//	                     waited for), print "grandchild PID", then echo.
//	detach               start a grandchild (testchild sleep) in a session
//	                     and process group of its own, stdin on /dev/null,
//	                     stdout and stderr inherited, never waited for, as
//	                     a daemon started by the child would; print
//	                     "grandchild PID", then echo.
//	escape [unmarked]    a double fork: start a middle process that starts
//	                     a grandchild (testchild hold) in a session and
//	                     process group of its own, stdout inherited, and
//	                     exits at once; wait for the middle, print
//	                     "grandchild PID", then echo. With "unmarked" the
//	                     grandchild gets an empty environment.
//	hold                 ignore SIGTERM and SIGINT and block, silently.
//	env                  print the environment sorted, one KEY=VALUE per
//	                     line, then echo.
//	stderr N             write "err 1" .. "err N" as lines on stderr, then
//	                     echo.
//	errbytes HEX         write the hex-decoded bytes to stderr, exit 0.
//	lines FILE           print "ready", then read stdin line by line as
//	                     fgets does (a last line without newline is read
//	                     too, at EOF) and append each line read to FILE as
//	                     "got:LINE|"; exit 0 at EOF. What a line-reading
//	                     program would act on.
//	records FILE         the same for the len32 framing: send "ready" as a
//	                     record, then append each record read to FILE as
//	                     "rec:DATA|" ("more:DATA|" when the message goes
//	                     on in the next record); at EOF append "eof|", or
//	                     "short|" when EOF came inside a record.
//	flood COUNT SIZE     write COUNT lines of SIZE bytes each (newline not
//	                     counted): the line number from 1, a space, then
//	                     'a'..'z' cycling, cut to SIZE; buffered, as fast as
//	                     possible; never reads stdin; exit 0.
//	noread               print "ready" and block, never reading stdin.
//	slow-start MS        read nothing for MS milliseconds, then echo.
//	len32-truncated      write a len32 record header announcing 100 bytes
//	                     (00 00 00 64) and 10 bytes ("0123456789"), exit 3.
//	bytes HEX            write exactly the hex-decoded bytes, exit 0.
//	pid                  print "pid P pgid G", then echo.
//	fds                  print "fds LIST nonblocking LIST": the descriptors
//	                     open in this process (less those the Go runtime
//	                     and the listing itself open), then those of 0, 1
//	                     and 2 in nonblocking mode ("-": none); then echo.
//	signals              print "sigblk MASK sigign MASK" (hex, from
//	                     /proc/self/status: the blocked and ignored signals
//	                     as this process sees them), then echo. A Go program
//	                     installs its own handlers at start, so only an
//	                     inherited SIG_IGN of SIGHUP or SIGINT, and inherited
//	                     blocked signals other than those Go must receive,
//	                     show.
//	broadcast [FILE]     a shared child (wsbridge --shared) with line
//	                     framing: append "PID\n" to FILE, if given, then
//	                     print "started PID" and read lines: "join" is
//	                     counted, silently; "go N SIZE [AFTER]" writes N
//	                     lines as flood does (buffered, one flush at the
//	                     end), once AFTER "join" lines have come (at once
//	                     without AFTER); "hash TEXT" prints "hash LEN HEX",
//	                     TEXT's length and SHA-256; "exit CODE" exits with
//	                     CODE; any other line is printed back as "echo:
//	                     LINE". Output is flushed whenever stdin has
//	                     nothing more buffered. Exit 0 at EOF.
//	after-eof MODE ...   read stdin to EOF, saying nothing, then run MODE
//	                     with its arguments (stdin then at EOF).
//	mux                  a shared child with the mux framing (see
//	                     framing.MuxDecoder): send "started PID" to
//	                     connection 0 (everyone), then for each record:
//	                     open: send "hello ID REMOTE_ADDR QUERY_STRING" to
//	                     ID, from the environment block; close: send
//	                     "left ID CODE" to 0; binary: echo it to the
//	                     sender; text "all:X": send X to 0; "to:ID:X": send
//	                     X to ID; "close:CODE:REASON": a close record for
//	                     the sender; "closeall:CODE:REASON": one for 0;
//	                     "exit": exit 7; "garble": stop reading stdin, wait
//	                     until the stdin pipe is full, write a malformed
//	                     record (kind 9) and block; any other text T: send
//	                     "echo ID: T" to the sender. Exit 0 at EOF, 2 on a
//	                     malformed record.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/framing"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: testchild MODE [ARGS...]")
	}
	args := os.Args[2:]
	switch mode := os.Args[1]; mode {
	case "echo":
		echo()
	case "cat":
		catStdin()
	case "exit":
		code := intArg(args, 0)
		if len(args) > 1 {
			fmt.Println(args[1])
		}
		os.Exit(code)
	case "partial":
		os.Stdout.WriteString(strArg(args, 0))
	case "sleep":
		block()
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("ready")
		block()
	case "grandchild":
		fmt.Printf("grandchild %d\n", startGrandchild(false))
		echo()
	case "detach":
		fmt.Printf("grandchild %d\n", startGrandchild(true))
		echo()
	case "escape":
		fmt.Printf("grandchild %d\n", escape(len(args) > 0 && args[0] == "unmarked"))
		echo()
	case "escape-middle":
		startEscapee(len(args) > 0 && args[0] == "unmarked")
	case "hold":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		block()
	case "env":
		env := os.Environ()
		slices.Sort(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
		echo()
	case "stderr":
		n := intArg(args, 0)
		for i := 1; i <= n; i++ {
			fmt.Fprintf(os.Stderr, "err %d\n", i)
		}
		echo()
	case "errbytes":
		os.Stderr.Write(hexArg(args, 0))
	case "lines":
		recordLines(strArg(args, 0))
	case "records":
		recordRecords(strArg(args, 0))
	case "flood":
		flood(intArg(args, 0), intArg(args, 1))
	case "noread":
		fmt.Println("ready")
		block()
	case "slow-start":
		time.Sleep(time.Duration(intArg(args, 0)) * time.Millisecond)
		echo()
	case "len32-truncated":
		os.Stdout.Write([]byte("\x00\x00\x00\x640123456789"))
		os.Exit(3)
	case "bytes":
		os.Stdout.Write(hexArg(args, 0))
	case "pid":
		fmt.Printf("pid %d pgid %d\n", os.Getpid(), syscall.Getpgrp())
		echo()
	case "fds":
		fmt.Printf("fds %s nonblocking %s\n", openFDs(), nonblockingStdio())
		echo()
	case "signals":
		fmt.Printf("sigblk %s sigign %s\n", procStatus("SigBlk"), procStatus("SigIgn"))
		echo()
	case "broadcast":
		broadcast(args)
	case "mux":
		mux()
	case "after-eof":
		// Silent until stdin ends, then MODE: the caller decides when
		// the child speaks (procs' parked-reader tests need a reader
		// that is parked before anything arrives).
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Args = append(os.Args[:1], args...)
		main()
	default:
		fail("unknown mode " + strconv.Quote(mode))
	}
}

func echo() {
	r := bufio.NewReader(os.Stdin)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil // a long line: echo it in pieces
		}
		if len(line) > 0 {
			if _, werr := os.Stdout.Write(line); werr != nil {
				os.Exit(1)
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			os.Exit(1)
		}
	}
}

func catStdin() {
	buf := make([]byte, 64<<10)
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 {
			if _, werr := os.Stdout.Write(buf[:n]); werr != nil {
				os.Exit(1)
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			os.Exit(1)
		}
	}
}

func recordLines(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fail(err.Error())
	}
	fmt.Println("ready")
	r := bufio.NewReader(os.Stdin)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			f.WriteString("got:" + strings.TrimSuffix(line, "\n") + "|\n")
		}
		if err != nil {
			return
		}
	}
}

func recordRecords(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fail(err.Error())
	}
	os.Stdout.Write(framing.Len32Encoder{}.AppendPrefix(nil, framing.Piece{Data: []byte("ready"), Kind: framing.Text, Final: true}))
	os.Stdout.WriteString("ready")
	r := bufio.NewReader(os.Stdin)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				f.WriteString("eof|")
			} else {
				f.WriteString("short|")
			}
			return
		}
		h := binary.BigEndian.Uint32(hdr[:])
		data := make([]byte, h&framing.MaxRecord)
		if _, err := io.ReadFull(r, data); err != nil {
			f.WriteString("short|")
			return
		}
		tag := "rec:"
		if h&(1<<30) != 0 {
			tag = "more:"
		}
		f.WriteString(tag + string(data) + "|")
	}
}

func flood(count, size int) {
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	floodTo(w, count, size)
	if err := w.Flush(); err != nil {
		os.Exit(1)
	}
}

// floodTo writes flood's lines to w.
func floodTo(w *bufio.Writer, count, size int) {
	line := make([]byte, 0, size+1)
	for i := 1; i <= count; i++ {
		line = strconv.AppendInt(line[:0], int64(i), 10)
		line = append(line, ' ')
		for c := 0; len(line) < size; c++ {
			line = append(line, byte('a'+c%26))
		}
		line = append(line[:size], '\n')
		if _, err := w.Write(line); err != nil {
			os.Exit(1)
		}
	}
}

func strArg(args []string, i int) string {
	if i >= len(args) {
		fail("missing argument " + strconv.Itoa(i+1))
	}
	return args[i]
}

func intArg(args []string, i int) int {
	n, err := strconv.Atoi(strArg(args, i))
	if err != nil {
		fail(err.Error())
	}
	return n
}

func hexArg(args []string, i int) []byte {
	b, err := hex.DecodeString(strArg(args, i))
	if err != nil {
		fail(err.Error())
	}
	return b
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "testchild:", msg)
	os.Exit(2)
}
