package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/socketbus/socketbus"
)

func TestExitCode(t *testing.T) {
	run := func(err error) error { return &runError{fmt.Errorf("channel %q: %w", "x", err)} }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"cobra's own error", errors.New("unknown flag: --x"), exitUsage},
		{"usage", run(usagef("bad %s", "flag")), exitUsage},
		{"no peers", run(socketbus.ErrNoPeers), exitNoPeers},
		{"timeout", run(socketbus.ErrTimeout), exitTimeout},
		{"remote", run(&socketbus.RemoteError{Message: "boom"}), exitRemote},
		{"refused", run(&dialError{fmt.Errorf("dial: %w", syscall.ECONNREFUSED)}), exitUnreachable},
		{"dial timeout", run(&dialError{fmt.Errorf("join: %w", context.DeadlineExceeded)}), exitUnreachable},
		{"too large", run(socketbus.ErrTooLarge), exitTooLarge},
		{"unauthorized", run(&dialError{fmt.Errorf("join refused: %w", socketbus.ErrUnauthorized)}), exitUnauthorized},
		{"limit", run(socketbus.ErrLimit), exitLimit},
		{"peer gone", run(socketbus.ErrPeerGone), exitGone},
		{"connection lost", run(socketbus.ErrClosed), exitGone},
		{"partial", run(&partialError{replies: 3, failed: map[string]int{"remote_error": 1}}), exitPartial},
		{"other", run(errors.New("disk full")), exitOther},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestReasonLine(t *testing.T) {
	err := fmt.Errorf("channel \"x\": %w", &socketbus.RemoteError{Message: "first line\nsecond line\n"})
	want := `channel "x": remote error: first line | second line`
	if got := reasonLine(err); got != want {
		t.Errorf("reasonLine = %q, want %q", got, want)
	}
}
