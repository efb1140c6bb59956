// Command footprint measures the resident memory of a wsbridge daemon,
// idle and with N open WebSocket connections, and prints one Markdown
// table row. cross/footprint.sh runs it for each build and mode.
//
//	go run ./cross/footprint [-n 100] [-shared] [-label L] -- [qemu-arm-static] bin/linux-arm-v7/wsbridge
//
// The command after -- is started with --address=127.0.0.1, a free port,
// --loglevel=error, --shared when asked, and /bin/cat as the program. Each
// connection does one echo (per-connection mode) or completes its
// handshake (shared mode, where an echo would go to every client) before
// the memory is read. -warm connections are opened and closed before the
// idle reading. The RSS is the daemon process's VmRSS once it has
// settled; under qemu-user that process is qemu, whose own memory counts
// in it. Everything stays on 127.0.0.1 and ends within -timeout.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/wsbridge/wsbridge/bridge/wstest"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 100, "connections to open")
	shared := flag.Bool("shared", false, "run /bin/cat with --shared")
	warm := flag.Int("warm", 5, "connections opened and closed before the idle reading")
	label := flag.String("label", "", "the first column of the row (default: the command)")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: footprint [-n N] [-shared] [-label L] -- COMMAND [ARGS...]")
		os.Exit(2)
	}
	if *label == "" {
		*label = strings.Join(flag.Args(), " ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	row, err := measure(ctx, flag.Args(), *n, *warm, *shared)
	if err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
	mode := "per connection"
	if *shared {
		mode = "shared"
	}
	fmt.Printf("| %s | %s | %d | %d | %d | %.1f |\n", *label, mode, row.idle, *n, row.open, float64(row.open-row.idle)/float64(*n))
}

// rss is what measure found, in KiB.
type rss struct{ idle, open int64 }

func measure(ctx context.Context, command []string, n, warm int, shared bool) (rss, error) {
	var r rss
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append(command[1:len(command):len(command)], "--address=127.0.0.1", "--port="+strconv.Itoa(port), "--loglevel=error")
	if shared {
		args = append(args, "--shared")
	}
	args = append(args, "/bin/cat")
	cmd := exec.CommandContext(ctx, command[0], args...)
	log := new(wstest.Buffer) // exec copies into it while measure may read it for an error
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = time.Second // a grandchild holding the log pipe must not hold us
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	pid := cmd.Process.Pid

	if err := waitListening(ctx, addr); err != nil {
		return r, fmt.Errorf("%w; log:\n%s", err, log.String())
	}
	// Warm up: the first connections run code paths for the first time,
	// which under qemu-user means translating them, and fill the
	// daemon's pools. Neither is a cost per connection.
	for i := range warm {
		c, err := open(ctx, addr, !shared)
		if err != nil {
			return r, fmt.Errorf("warm-up connection %d: %w; log:\n%s", i+1, err, log.String())
		}
		c.Close()
	}
	if r.idle, err = settled(ctx, pid); err != nil {
		return r, err
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := open(ctx, addr, !shared)
		if err != nil {
			return r, fmt.Errorf("connection %d: %w; log:\n%s", i+1, err, log.String())
		}
		conns = append(conns, c)
	}
	r.open, err = settled(ctx, pid)
	return r, err
}

// waitListening waits until addr accepts connections.
func waitListening(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never accepted a connection: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// settled returns pid's VmRSS once two readings 500 ms apart agree within
// 1%, or the last reading after 10 s.
func settled(ctx context.Context, pid int) (int64, error) {
	prev := int64(-1)
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		cur, err := vmRSS(pid)
		if err != nil {
			return 0, err
		}
		if prev >= 0 && (abs(cur-prev)*100 <= prev || time.Now().After(deadline)) {
			return cur, nil
		}
		prev = cur
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// vmRSS reads VmRSS, in KiB, from /proc/PID/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

// open completes a WebSocket handshake on a new connection to addr and,
// with echo, sends one text message and reads it back.
func open(ctx context.Context, addr string, echo bool) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err == nil && !strings.HasPrefix(status, "HTTP/1.1 101") {
		err = fmt.Errorf("handshake: %q", strings.TrimSpace(status))
	}
	for err == nil {
		var line string
		if line, err = br.ReadString('\n'); line == "\r\n" {
			break
		}
	}
	if err == nil && echo {
		// A masked text frame "hi" (mask 0: the payload is as is), and
		// the unmasked frame that comes back.
		if _, err = c.Write([]byte{0x81, 0x82, 0, 0, 0, 0, 'h', 'i'}); err == nil {
			var back [4]byte
			if _, err = io.ReadFull(br, back[:]); err == nil && !bytes.Equal(back[:], []byte{0x81, 2, 'h', 'i'}) {
				err = fmt.Errorf("echo: % x, want 81 02 68 69", back)
			}
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
