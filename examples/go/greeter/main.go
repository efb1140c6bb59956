// Command greeter is the child behind `make run`: a line-framed program
// that greets, answers each line reversed and upper-cased with a counter,
// and prints the time every few seconds so the demo page visibly streams.
//
//	go build -o greeter ./examples/go/greeter
//	wsbridge --demo ./greeter
//
// It exits 0 when stdin ends, which is how wsbridge says the client left.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	every := flag.Duration("every", 5*time.Second, "print a clock line this often (0: never)")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *every); err != nil {
		fmt.Fprintln(os.Stderr, "greeter:", err)
		os.Exit(1)
	}
}

// run owns out: only this goroutine writes to it, so lines never interleave.
// os.Stdout is unbuffered in Go, so each Fprintf reaches wsbridge at once;
// a program that wraps it in a bufio.Writer must Flush after every line.
func run(in io.Reader, out io.Writer, every time.Duration) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() { // ends at EOF; main returns right after, so nobody waits for it
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20) // bigger than wsbridge's default --max-message
		for sc.Scan() {
			lines <- sc.Text()
		}
		readErr <- sc.Err()
		close(lines)
	}()

	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}

	// REMOTE_ADDR is one of the CGI variables wsbridge sets for the child.
	who := os.Getenv("REMOTE_ADDR")
	if who == "" {
		who = "there"
	}
	if _, err := fmt.Fprintf(out, "hello %s: type a line and I answer it reversed and upper-cased\n", who); err != nil {
		return err
	}
	n := 0
	for {
		var err error
		select {
		case line, ok := <-lines:
			if !ok {
				return <-readErr
			}
			n++
			_, err = fmt.Fprintf(out, "#%d %s\n", n, strings.ToUpper(reverse(line)))
		case now := <-tick:
			_, err = fmt.Fprintf(out, "clock %s\n", now.Format("15:04:05"))
		}
		if err != nil {
			return err // stdout closed: nobody is listening any more
		}
	}
}

// reverse reverses s by code points, so UTF-8 text stays valid.
func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
