package main

import (
	"strings"
	"testing"
	"time"
)

// TestServerList: --server takes a comma-separated list, a repeated
// --server adds to it, and SOCKETBUS_SERVER takes a list too; a first
// server that is down is skipped for the next.
func TestServerList(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil)
	startReceiver(t, bin, srv, "--channel", "listed", "--exec", "tr a-z A-Z")
	down := closedPort(t)
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"comma", nil, []string{"--server", down + "," + srv.addr}},
		{"repeated", nil, []string{"--server", down, "--server", srv.addr}},
		{"environment", []string{"SOCKETBUS_SERVER=" + down + "," + srv.addr}, nil},
	} {
		args := append([]string{"send", "--channel", "listed", "--data", "hi", "--timeout", "20s"}, c.args...)
		if res := runCmd(t, bin, c.env, "", args...); res.code != 0 || res.stdout != "HI" {
			t.Errorf("%s: status %d, stdout %q, stderr %q; want 0 and HI", c.name, res.code, res.stdout, res.stderr)
		}
	}
	if res := runCmd(t, bin, nil, "", "send", "--channel", "listed", "--data", "hi", "--server", srv.addr+",,"); res.code != exitUsage {
		t.Errorf("an empty address in the list: status %d, stderr %q; want %d", res.code, res.stderr, exitUsage)
	}
}

// TestSendTimeoutBoundsTheWait: send to a server that is down waits for it
// within its --timeout, not the 10 s connect timeout, and without
// --timeout within --connect-timeout (it does wait: the server may be
// restarting).
func TestSendTimeoutBoundsTheWait(t *testing.T) {
	bin := buildBinary(t)
	down := closedPort(t)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"timeout", []string{"--timeout", "1s"}},
		{"connect-timeout", []string{"--connect-timeout", "1s"}},
	} {
		start := time.Now()
		args := append([]string{"send", "--server", down, "--channel", "nobody", "--data", "x"}, c.args...)
		res := runCmd(t, bin, nil, "", args...)
		took := time.Since(start)
		if res.code != exitUnreachable {
			t.Errorf("%s: status %d, stderr %q; want %d (unreachable)", c.name, res.code, res.stderr, exitUnreachable)
		}
		// The bound is the 10 s it waited before the fix, less a margin
		// for a slow process start; the wait itself is 1 s.
		if took >= 8*time.Second {
			t.Errorf("%s: send waited %v for a down server; want about 1 s", c.name, took)
		}
		if !strings.Contains(res.stderr, "waiting for it for up to 1s") {
			t.Errorf("%s: stderr %q does not say it waits up to 1s", c.name, res.stderr)
		}
	}
}
