package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/socketbus/socketbus"
)

// Exit statuses of the socketbus command, one per kind of failure, so that
// scripts can tell them apart. exitHelp documents them; keep both in step
// with the README.
const (
	exitOK           = 0  // success
	exitOther        = 1  // any failure without a status of its own
	exitUsage        = 2  // bad flags, arguments or environment
	exitNoPeers      = 3  // no other client is joined to the channel
	exitTimeout      = 4  // the request's timeout passed
	exitRemote       = 5  // the receiver answered with an error
	exitUnreachable  = 6  // the server could not be reached: refused, unknown host, TLS failure
	exitTooLarge     = 7  // a body exceeded the server's message limit
	exitUnauthorized = 8  // the server refused the token for the channel
	exitLimit        = 9  // a server limit refused the connection or request
	exitGone         = 10 // the receiver or the connection went away mid-request
	exitPartial      = 11 // send --all: not every member answered
	// A command a signal cuts short exits 128 + the signal's number: see
	// interrupted.exitCode.
)

// exitHelp is the table of exit statuses shown in the root command's help.
const exitHelp = `Exit status:
  0   success
  1   any other failure
  2   usage: bad flags, arguments or environment
  3   no peers: no receiver is joined to the channel
  4   timeout: no complete response before the timeout
  5   remote error: the receiver failed the request (receive --exec: the command exited non-zero)
  6   unreachable: connection refused, unknown host, TLS handshake failed,
      or not a socketbus bus port (the line says what it looks like: a TLS
      or plain server, the HTTP monitor)
  7   too large: a body exceeded the server's --max-message-bytes
  8   unauthorized: the server refused the token for the channel
  9   limit: a server limit refused the connection or the request
  10  gone: the receiver or the connection went away mid-request
  11  partial: send --all: not every member answered (one failed, left or
      ran out of time; each reply says which)
  130 interrupted by SIGINT (Ctrl-C); 143 by SIGTERM

On failure the command writes one line to stderr saying why.`

// usageError marks an error in how the command was invoked.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error: the command exits with status 2.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// runError marks an error returned by a command's Run function, as opposed
// to one cobra returned while parsing the command line.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// dialError marks a failure to connect and join: unless the server refused
// the join for a reason of its own, the server is unreachable.
type dialError struct{ err error }

// Error is the dial's error alone: the library's already names the address
// when the connection failed.
func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// exitCode maps the error a command returned to the process's exit status.
func exitCode(err error) int {
	var (
		usage  *usageError
		run    *runError
		remote *socketbus.RemoteError
		dial   *dialError
		part   *partialError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		return exitUsage
	case !errors.As(err, &run):
		// Errors cobra returns itself are all about the command line.
		return exitUsage
	case errors.As(err, &part):
		return exitPartial
	case errors.Is(err, socketbus.ErrUnauthorized):
		return exitUnauthorized
	case errors.Is(err, socketbus.ErrLimit):
		return exitLimit
	case errors.As(err, &dial):
		return exitUnreachable
	case errors.Is(err, socketbus.ErrNoPeers):
		return exitNoPeers
	case errors.Is(err, socketbus.ErrTimeout):
		return exitTimeout
	case errors.As(err, &remote):
		return exitRemote
	case errors.Is(err, socketbus.ErrTooLarge):
		return exitTooLarge
	case errors.Is(err, socketbus.ErrPeerGone), errors.Is(err, socketbus.ErrServerClosed), errors.Is(err, socketbus.ErrClosed),
		errors.Is(err, socketbus.ErrDisconnected), errors.Is(err, socketbus.ErrNotDelivered):
		return exitGone
	}
	return exitOther
}

// reasonLine renders err as the one line the command writes to stderr.
// The library prefixes its errors with its package name; the line already
// starts with the command's name, so the prefix is dropped for reading,
// and a multi-line message (a failing command's stderr) is joined up.
func reasonLine(err error) string {
	msg := strings.ReplaceAll(err.Error(), "socketbus: ", "")
	lines := strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " | ")
}
