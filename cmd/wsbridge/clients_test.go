package main

// The independent clients the integration tests talk to the bridge with:
// github.com/coder/websocket (a Go implementation that shares no code with
// the gobwas/ws the server uses), and Debian's python3-websockets and
// node-ws run as subprocesses from small inline scripts.

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	pythonPath    = "/usr/bin/python3"
	nodePath      = "/usr/bin/node"
	clientInstall = "apt-get install -y python3-websockets node-ws"
)

// dialWS connects with coder/websocket, lifts its 32 KiB read limit, and
// drops the connection when the test ends.
func dialWS(t testing.TB, ctx context.Context, url string, header http.Header) *websocket.Conn {
	t.Helper()
	return dialWSWith(t, ctx, url, &websocket.DialOptions{HTTPHeader: header})
}

func dialWSWith(t testing.TB, ctx context.Context, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v %s", url, err, status)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readWS reads one whole message.
func readWS(t testing.TB, ctx context.Context, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, data
}

// readText reads one message and fails the test unless it is text.
func readText(t testing.TB, ctx context.Context, c *websocket.Conn) string {
	t.Helper()
	typ, data := readWS(t, ctx, c)
	if typ != websocket.MessageText {
		t.Fatalf("got a %v message %q, want text", typ, data)
	}
	return string(data)
}

// expectClose reads until the server closes and returns the close frame's
// code and reason; messages that arrive first are returned too.
func expectClose(t testing.TB, ctx context.Context, c *websocket.Conn) (code websocket.StatusCode, reason string, msgs []string) {
	t.Helper()
	for {
		_, data, err := c.Read(ctx)
		if err == nil {
			msgs = append(msgs, string(data))
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v (messages before: %q)", err, msgs)
		}
		return ce.Code, ce.Reason, msgs
	}
}

// wsMsg is one message as a client sent or received it.
type wsMsg struct {
	Binary bool
	Data   []byte
}

func wsText(s string) wsMsg   { return wsMsg{Data: []byte(s)} }
func wsBinary(b []byte) wsMsg { return wsMsg{Binary: true, Data: b} }

func (m wsMsg) String() string {
	if m.Binary {
		return fmt.Sprintf("binary %x", m.Data)
	}
	return fmt.Sprintf("text %q", m.Data)
}

// clientRun is what a client saw: the messages in order and how the
// server closed.
type clientRun struct {
	Msgs        []wsMsg
	CloseCode   int
	CloseReason string
}

// How long a client reads before it closes, given as its third argument:
// "msgs N" reads N messages, "bytes N" reads until N payload bytes
// arrived, then the client closes with 1000; "wait" reads until the
// server closes.
type readPlan struct {
	mode string // "msgs", "bytes" or "wait"
	n    int
}

// wsClient runs one session: it sends msgs at once, reads as plan says,
// and reports.
type wsClient struct {
	name string
	run  func(t *testing.T, url string, plan readPlan, msgs []wsMsg) clientRun
}

var wsClients = []wsClient{
	{"coder", runCoder},
	{"python", runPython},
	{"node", runNode},
}

func runCoder(t *testing.T, url string, plan readPlan, msgs []wsMsg) clientRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialWS(t, ctx, url, nil)
	for _, m := range msgs {
		typ := websocket.MessageText
		if m.Binary {
			typ = websocket.MessageBinary
		}
		if err := c.Write(ctx, typ, m.Data); err != nil {
			t.Fatalf("coder write: %v", err)
		}
	}
	var run clientRun
	got := 0
	for plan.mode == "wait" || plan.mode == "msgs" && len(run.Msgs) < plan.n || plan.mode == "bytes" && got < plan.n {
		typ, data, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("coder read: %v", err)
			}
			run.CloseCode, run.CloseReason = int(ce.Code), ce.Reason
			return run
		}
		run.Msgs = append(run.Msgs, wsMsg{Binary: typ == websocket.MessageBinary, Data: data})
		got += len(data)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("coder close: %v", err)
	}
	run.CloseCode = int(websocket.StatusNormalClosure)
	return run
}

// The scripts take: URL MODE N MSG... where each MSG is "t:HEX" or
// "b:HEX"; they print one line per message received ("text HEX" or
// "binary HEX"), then "close CODE REASON".
const pythonClient = `
import asyncio, sys, websockets

async def main():
    url, mode, n, *msgs = sys.argv[1:]
    n = int(n)
    async with websockets.connect(url, max_size=None, open_timeout=10, close_timeout=5) as ws:
        for m in msgs:
            data = bytes.fromhex(m[2:])
            await ws.send(data.decode() if m[0] == 't' else data)
        count = got = 0
        try:
            while mode == 'wait' or (mode == 'msgs' and count < n) or (mode == 'bytes' and got < n):
                m = await ws.recv()
                if isinstance(m, str):
                    b = m.encode()
                    print('text', b.hex(), flush=True)
                else:
                    b = m
                    print('binary', b.hex(), flush=True)
                count += 1
                got += len(b)
        except websockets.ConnectionClosed:
            pass
        else:
            await ws.close(1000)
    print('close', ws.close_code, ws.close_reason or '', flush=True)

asyncio.run(asyncio.wait_for(main(), 20))
`

const nodeClient = `
const WebSocket = require('ws');
const [url, mode, nArg, ...msgs] = process.argv.slice(2);
const n = parseInt(nArg, 10);
const ws = new WebSocket(url, { maxPayload: 0 });
const timer = setTimeout(() => { console.log('timeout'); process.exit(3); }, 20000);
let count = 0, got = 0, closing = false;
function check() {
  if (closing) return;
  if ((mode === 'msgs' && count >= n) || (mode === 'bytes' && got >= n)) {
    closing = true;
    ws.close(1000);
  }
}
ws.on('open', () => {
  for (const m of msgs) {
    const b = Buffer.from(m.slice(2), 'hex');
    if (m[0] === 't') ws.send(b.toString('utf8')); else ws.send(b, { binary: true });
  }
  check();
});
ws.on('message', (data, isBinary) => {
  const b = Buffer.from(data);
  console.log((isBinary ? 'binary ' : 'text ') + b.toString('hex'));
  count++;
  got += b.length;
  check();
});
ws.on('close', (code, reason) => {
  clearTimeout(timer);
  console.log('close ' + code + ' ' + reason.toString());
});
ws.on('error', (e) => { console.log('error ' + e.message); });
`

func runPython(t *testing.T, url string, plan readPlan, msgs []wsMsg) clientRun {
	t.Helper()
	py := needTool(t, pythonPath, clientInstall)
	if out, err := exec.Command(py, "-c", "import websockets").CombinedOutput(); err != nil {
		needTool(t, "/usr/lib/python3/dist-packages/websockets", clientInstall)
		t.Fatalf("python3 cannot import websockets: %v\n%s", err, out)
	}
	return runScript(t, exec.Command(py, writeScript(t, "client.py", pythonClient)), url, plan, msgs)
}

func runNode(t *testing.T, url string, plan readPlan, msgs []wsMsg) clientRun {
	t.Helper()
	node := needTool(t, nodePath, clientInstall)
	needTool(t, "/usr/share/nodejs/ws", clientInstall)
	cmd := exec.Command(node, writeScript(t, "client.js", nodeClient))
	cmd.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs")
	return runScript(t, cmd, url, plan, msgs)
}

func writeScript(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runScript runs a client script with the session's arguments, bounded
// by a timeout, and parses what it printed.
func runScript(t *testing.T, cmd *exec.Cmd, url string, plan readPlan, msgs []wsMsg) clientRun {
	t.Helper()
	cmd.Args = append(cmd.Args, url, plan.mode, strconv.Itoa(plan.n))
	for _, m := range msgs {
		k := "t:"
		if m.Binary {
			k = "b:"
		}
		cmd.Args = append(cmd.Args, k+hex.EncodeToString(m.Data))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	var run clientRun
	var lines []string
	closed := false
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<30)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "text", "binary":
			b, err := hex.DecodeString(rest)
			if err != nil {
				t.Fatalf("%s printed %q: %v", cmd.Args[1], line, err)
			}
			run.Msgs = append(run.Msgs, wsMsg{Binary: kind == "binary", Data: b})
		case "close":
			code, reason, _ := strings.Cut(rest, " ")
			run.CloseCode, _ = strconv.Atoi(code)
			run.CloseReason = reason
			closed = true
		}
	}
	if err := cmd.Wait(); err != nil || !closed {
		t.Fatalf("%s: %v, closed=%v\nstdout:\n%s\nstderr:\n%s", filepath.Base(cmd.Args[1]), err, closed, strings.Join(lines, "\n"), stderr.String())
	}
	return run
}
