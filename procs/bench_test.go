package procs

import (
	"fmt"
	"testing"
)

// The cost of one child: Start, Terminate (stdin close, exit, reap),
// closing Stdout.
func BenchmarkStartTerminate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p, err := Start(child("cat"))
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Terminate(0); err != nil {
			b.Fatal(err)
		}
		p.Stdout.Close()
	}
}

func BenchmarkEnviron(b *testing.B) {
	c := CGI{
		RemoteAddr: "192.0.2.7", RemotePort: "50123", ServerName: "board.local", ServerPort: "8080",
		Protocol: "HTTP/1.1", Method: "GET", URI: "/ws/chat?room=1", ScriptName: "/ws", PathInfo: "/chat",
		Query: "room=1", UniqueID: "0123456789abcdef", ServerSoftware: "wsbridge/0.1",
	}
	for i := range 20 {
		c.Headers = append(c.Headers, [2]string{fmt.Sprintf("X-Header-%d", i), "some value of a typical length"})
	}
	pass := []string{"PATH", "LANG"}
	b.ReportAllocs()
	for b.Loop() {
		c.Environ(pass)
	}
}

// One walk of /proc, as each Terminate makes (costs scale with the
// processes on the machine: see the process count it reports).
func BenchmarkSnapshot(b *testing.B) {
	b.ReportAllocs()
	var n int
	for b.Loop() {
		t, err := snapshot()
		if err != nil {
			b.Fatal(err)
		}
		n = len(t.byPID)
	}
	b.ReportMetric(float64(n), "procs")
}

// One Start and Terminate while 1000 other children sit idle, as in a
// daemon with 1000 open sessions: Terminate's look for escapees must not
// cost a walk of every process on the machine. adopts as a subreaper
// would (ReapOrphans cannot be undone in this process).
func BenchmarkTerminateAmongIdle(b *testing.B) {
	for _, adopts := range []bool{false, true} {
		b.Run(fmt.Sprintf("adopts=%v", adopts), func(b *testing.B) {
			theReaper.mu.Lock()
			was := theReaper.adopts
			theReaper.adopts = adopts
			theReaper.mu.Unlock()
			defer func() {
				theReaper.mu.Lock()
				theReaper.adopts = was
				theReaper.mu.Unlock()
			}()
			idle := make([]*Process, 0, 1000)
			defer func() {
				for _, p := range idle {
					p.Terminate(0)
					p.Stdout.Close()
				}
			}()
			for range cap(idle) {
				p, err := Start(Spec{Path: "/bin/cat"})
				if err != nil {
					b.Fatal(err)
				}
				idle = append(idle, p)
			}
			b.ResetTimer()
			for b.Loop() {
				p, err := Start(Spec{Path: "/bin/cat"})
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Terminate(0); err != nil {
					b.Fatal(err)
				}
				p.Stdout.Close()
			}
		})
	}
}
