package main

import (
	"strings"
	"syscall"
	"testing"
)

// TestReceiveRidesThroughAKilledServer: the server process is killed and
// started again on the same address. `receive --exec` carries on (its log
// says when it lost the server and when it came back), and a `send` started
// while the server is down waits for it within its --timeout and gets its
// answer, and so does a `send --all`.
func TestReceiveRidesThroughAKilledServer(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil)
	rcv := startReceiver(t, bin, srv, "--channel", "rides", "--exec", "tr a-z A-Z")
	// A channel of its own for send --all: a send on "rides" would be one
	// of its members.
	rcvAll := startReceiver(t, bin, srv, "--channel", "rides-all", "--exec", "tr a-z A-Z")
	if res := runCmd(t, bin, nil, "", "send", "--server", srv.addr, "--channel", "rides", "--data", "before", "--timeout", "10s"); res.code != 0 || res.stdout != "BEFORE" {
		t.Fatalf("send before the kill: status %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	srv.signal(syscall.SIGKILL)
	srv.wait()
	rcv.waitLine(rcv.stderr, "lost the server at "+srv.addr)
	rcvAll.waitLine(rcvAll.stderr, "lost the server at "+srv.addr)

	// A send made while nothing listens waits for the server.
	send := startProc(t, bin, nil, "send", "--server", srv.addr, "--channel", "rides", "--data", "after", "--timeout", "20s")
	send.waitLine(send.stderr, "does not answer; waiting for it")
	// And a gather too.
	gather := startProc(t, bin, nil, "send", "--server", srv.addr, "--channel", "rides-all", "--all", "--data", "gathered", "--timeout", "20s")
	gather.waitLine(gather.stderr, "does not answer; waiting for it")
	again := startProc(t, bin, nil, "serve", "--addr", srv.addr)
	again.waitLine(again.stdout, "socketbus listening on")
	rcv.waitLine(rcv.stderr, "back on "+srv.addr)
	rcvAll.waitLine(rcvAll.stderr, "back on "+srv.addr)
	if code := send.wait(); code != 0 {
		t.Fatalf("send started while the server was down: status %d\nstderr:\n%s", code, send.stderr)
	}
	if got := strings.TrimSpace(send.stdout.String()); got != "AFTER" {
		t.Fatalf("send after the restart: stdout %q, want AFTER", got)
	}
	if code := gather.wait(); code != 0 || !strings.HasSuffix(gather.stdout.String(), "\nGATHERED\n") {
		t.Fatalf("send --all started while the server was down: status %d, stdout %q\nstderr:\n%s", code, gather.stdout, gather.stderr)
	}
	select {
	case <-rcv.exited:
		t.Fatalf("receive exited (status %d) across the restart\nstderr:\n%s", rcv.exitCode, rcv.stderr)
	default:
	}
}
