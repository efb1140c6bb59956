// Package procs starts the programs wsbridge serves, reaps them and ends
// them, at a constant and small cost per child.
//
// A child is started with syscall.ForkExec (not os/exec, whose Wait holds
// an OS thread per child and whose copying goroutines cost stacks) as the
// leader of its own process group. Its stdin and stdout, and its stderr
// when Spec.Stderr is set, are pipes whose ends on our side are
// nonblocking and registered with the Go runtime's poller: deadlines work,
// and a blocked Read or Write parks a goroutine, not a thread.
//
// Goroutines: one reaper goroutine serves the whole process. It runs while
// at least one child is registered (or for good after ReapOrphans) and is
// woken by SIGCHLD; it then calls wait4(pid, WNOHANG) for each registered
// child, so it never takes a child that somebody else (os/exec, say) is
// waiting for. ReapOrphans switches it to wait4(-1) so reparented
// grandchildren are reaped too; that mode takes every child of the process
// and so cannot be mixed with os/exec. The only other goroutine is one per
// child with Spec.Stderr, owned by its Process: it ends at stderr EOF, and
// Terminate waits for it.
//
// Terminate is the termination ladder: close stdin, SIGTERM, SIGKILL, and
// then the same for whatever is left in the child's process group, and for
// what its descendants started outside the group (setsid, a double fork),
// so that nothing the child started outlives it. Those are found in /proc:
// every child's environment carries a marker, WSBRIDGE_CHILD, that its
// descendants inherit, and Terminate notes the leader's descendants while
// the leader still runs. Each Terminate therefore walks /proc (concurrent
// walks are shared). A process that clears its environment after its
// parent is gone cannot be told apart: EndAll and KillAll, for a daemon
// about to exit, end every process it started, such orphans of a
// subreaper included.
//
// Signals: the child starts with default dispositions for every signal
// the daemon handles or was notified of (SIGPIPE and SIGTERM included) and
// with the signal mask the daemon itself was started with (normally
// empty). exec keeps a disposition of SIG_IGN, so a signal the daemon
// ignores with signal.Ignore stays ignored in every child: use
// signal.Notify instead (a Go program never needs to ignore SIGPIPE: a
// write to a broken pipe other than stdout or stderr just returns EPIPE).
// Nor may the daemon call signal.Reset or signal.Ignore for SIGCHLD: the
// reaper is woken by it.
//
// Descriptors: the child gets its three pipes (or the daemon's stderr) and
// nothing else; the first Start marks the descriptors the daemon inherited
// close-on-exec.
//
// CGI.Environ builds a child's whole environment from a request.
package procs
