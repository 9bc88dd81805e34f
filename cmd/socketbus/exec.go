package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/socketbus/socketbus"
)

const (
	// holdBytes is how much of a command's output receive --exec holds
	// before it starts streaming the response. A command that fails
	// before writing more is answered with a clean remote error carrying
	// its stderr; past it, a failure cuts the response short with one.
	holdBytes = 64 << 10
	// stderrBytes is how much of a command's stderr a failure reports.
	stderrBytes = 4 << 10
)

// execRequest answers req by running command through sh -c: the request
// body is the command's stdin, its stdout the response. A command that
// exits non-zero fails the request with its stderr. The command runs in
// its own process group, killed whole when the request ends early (its
// timeout passes, its sender cancels or leaves).
func execRequest(command string, req *socketbus.Request) error {
	cmd := exec.CommandContext(req.Context(), "sh", "-c", command)
	cmd.Env = append(os.Environ(),
		"SOCKETBUS_REQUEST_ID="+req.ID.String(),
		"SOCKETBUS_FROM="+req.From.String(),
	)
	cmd.Env = append(cmd.Env, headerEnv(req.Header)...)
	killProcessGroup(cmd)
	cmd.WaitDelay = time.Second
	stderr := &cappedBuffer{max: stderrBytes}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return failRequest(req, fmt.Errorf("command stdin: %w", err))
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return failRequest(req, fmt.Errorf("command stdout: %w", err))
	}
	if err := cmd.Start(); err != nil {
		return failRequest(req, fmt.Errorf("starting command: %w", err))
	}

	// Feed the body to the command. The copy ends when the body does,
	// when the command stops reading (the pipe breaks), or when the
	// request is answered (the body's reads fail).
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		io.Copy(stdin, req.Body) // a command may ignore its stdin: not an error
		stdin.Close()
	}()
	defer func() { <-fed }()

	wait := sync.OnceValue(func() error { return commandError(cmd.Wait(), stderr) })
	defer wait()

	held := make([]byte, holdBytes)
	n, err := io.ReadFull(stdout, held)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// The whole output is held: answer by how the command exited.
		if werr := wait(); werr != nil {
			return failRequest(req, werr)
		}
		return respond(req, bytes.NewReader(held[:n]))
	case err != nil:
		stdout.Close()
		return failRequest(req, fmt.Errorf("reading command output: %w", err))
	}
	return respond(req, io.MultiReader(bytes.NewReader(held), &exitReader{r: stdout, wait: wait}))
}

// respond answers req with body, wrapping the error if that fails.
func respond(req *socketbus.Request, body io.Reader) error {
	if err := req.Respond(body); err != nil {
		return fmt.Errorf("responding: %w", err)
	}
	return nil
}

// failRequest answers req with cause as a remote error and returns cause
// (or why the answer could not be given).
func failRequest(req *socketbus.Request, cause error) error {
	if err := req.Fail(cause); err != nil {
		return fmt.Errorf("failing the request (%v): %w", cause, err)
	}
	return cause
}

// exitReader reads a command's stdout and, at its end, waits for the
// command: a failure replaces io.EOF, so that the response ends in a
// remote error rather than looking complete.
type exitReader struct {
	r    io.Reader
	wait func() error
}

func (e *exitReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		if werr := e.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// commandError turns Wait's error into the failure the sender sees: the
// command's stderr when it wrote any, else the exit status; with the error
// code a first line "code: CODE" of its stderr gives.
func commandError(waitErr error, stderr *cappedBuffer) error {
	if waitErr == nil {
		return nil
	}
	code, msg := splitCode(strings.TrimSpace(stderr.String()))
	if msg == "" {
		msg = "command failed: " + waitErr.Error()
	}
	return &commandFailure{remote: socketbus.RemoteError{Code: code, Message: msg}, err: waitErr}
}

// commandFailure is a command that failed; it is the sender's
// RemoteError (Fail finds remote through Unwrap).
type commandFailure struct {
	remote socketbus.RemoteError
	err    error // from Wait
}

func (e *commandFailure) Error() string { return e.remote.Message }
func (e *commandFailure) Unwrap() []error {
	return []error{&e.remote, e.err}
}

// cappedBuffer keeps the first max bytes written to it and drops the rest,
// without failing the writer.
type cappedBuffer struct {
	mu        sync.Mutex
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room < len(p) {
		b.buf.Write(p[:max(room, 0)])
		b.truncated = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// String returns what was kept, marked when some was dropped.
func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "…"
	}
	return b.buf.String()
}
