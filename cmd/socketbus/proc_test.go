//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitLimit bounds every wait in the end-to-end tests: reaching it is a
// failure, never the way a test moves on.
const waitLimit = 60 * time.Second

// buildBinary builds the socketbus command, with the race detector when
// the tests have it, once for all the tests, into the directory TestMain
// made, and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		bin := filepath.Join(testDir, "socketbus")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		built.path = bin
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// built is the binary buildBinary built.
var built struct {
	once sync.Once
	path string
	err  error
}

// testEnv is the environment of the processes the tests start: the test's
// own without any SOCKETBUS_ variable, plus extra.
func testEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOCKETBUS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// lines collects what a process writes to one stream and lets a test wait
// for a line.
type lines struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // capacity 1: kicked on every write
}

func newLines() *lines { return &lines{changed: make(chan struct{}, 1)} }

func (o *lines) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.buf.Write(p)
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (o *lines) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// line returns the first complete line containing substr, or "".
func (o *lines) line(substr string) string {
	for l := range strings.Lines(o.String()) {
		if strings.HasSuffix(l, "\n") && strings.Contains(l, substr) {
			return strings.TrimSuffix(l, "\n")
		}
	}
	return ""
}

// proc is a socketbus process the test started.
type proc struct {
	t        *testing.T
	name     string
	cmd      *exec.Cmd
	stdout   *lines
	stderr   *lines
	exited   chan struct{} // closed when Wait has returned
	exitCode int
}

// startProc starts bin with args and stops it, if it is still running,
// when the test ends: SIGTERM first, which lets it finish what it holds,
// then SIGKILL.
func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	return startProcIn(t, bin, env, nil, args...)
}

// startProcIn is startProc with stdin as the process's standard input
// (nil: none).
func startProcIn(t *testing.T, bin string, env []string, stdin *os.File, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: strings.Join(args, " "), cmd: exec.Command(bin, args...),
		stdout: newLines(), stderr: newLines(), exited: make(chan struct{})}
	p.cmd.Env = testEnv(env...)
	if stdin != nil {
		p.cmd.Stdin = stdin
	}
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.exitCode = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.exitCode = ee.ExitCode()
		} else if err != nil {
			p.exitCode = -1
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitLine waits for a line containing substr on the stream and returns
// it; it fails the test if the process exits or waitLimit passes first.
func (p *proc) waitLine(o *lines, substr string) string {
	p.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		if l := o.line(substr); l != "" {
			return l
		}
		select {
		case <-o.changed:
		case <-p.exited:
			if l := o.line(substr); l != "" {
				return l
			}
			p.t.Fatalf("%s exited (status %d) before writing %q\nstdout:\n%s\nstderr:\n%s",
				p.name, p.exitCode, substr, p.stdout, p.stderr)
		case <-timer.C:
			p.t.Fatalf("%s wrote no line with %q within %v\nstdout:\n%s\nstderr:\n%s",
				p.name, substr, waitLimit, p.stdout, p.stderr)
		}
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.exitCode
	case <-time.After(waitLimit):
		p.t.Fatalf("%s still running after %v\nstderr:\n%s", p.name, waitLimit, p.stderr)
		return -1
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// result is how a short-lived command ended.
type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs bin with args and stdin to its end.
func runCmd(t *testing.T, bin string, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = testEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running socketbus %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// serveProc is a running serve process.
type serveProc struct {
	*proc
	addr    string // where it listens for clients
	monitor string // its monitoring URL, if started with --monitor
}

// startServer runs serve on a random loopback port with args added and
// waits until it says where it listens.
func startServer(t *testing.T, bin string, env []string, args ...string) *serveProc {
	t.Helper()
	p := startProc(t, bin, env, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	s := &serveProc{proc: p}
	s.addr = strings.TrimPrefix(p.waitLine(p.stdout, "socketbus listening on "), "socketbus listening on ")
	if l := p.stdout.line("socketbus monitoring on "); l != "" {
		s.monitor = strings.TrimPrefix(l, "socketbus monitoring on ")
	}
	return s
}

// startReceiver runs receive with args against s and waits until it has
// joined its channel.
func startReceiver(t *testing.T, bin string, s *serveProc, args ...string) *proc {
	t.Helper()
	p := startProc(t, bin, nil, append([]string{"receive", "--server", s.addr}, args...)...)
	p.waitLine(p.stderr, "waiting for requests")
	return p
}

// mkfifo makes a named pipe in a temporary directory.
func mkfifo(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	return path
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitLineCount waits until the stream has n complete lines containing
// substr; it fails the test if the process exits or waitLimit passes
// first.
func (p *proc) waitLineCount(o *lines, substr string, n int) {
	p.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		count := 0
		for l := range strings.Lines(o.String()) {
			if strings.HasSuffix(l, "\n") && strings.Contains(l, substr) {
				count++
			}
		}
		if count >= n {
			return
		}
		select {
		case <-o.changed:
		case <-p.exited:
			p.t.Fatalf("%s exited (status %d) before %d lines %q\nstderr:\n%s", p.name, p.exitCode, n, substr, p.stderr)
		case <-timer.C:
			p.t.Fatalf("%s: fewer than %d lines %q within %v\nstderr:\n%s", p.name, n, substr, waitLimit, p.stderr)
		}
	}
}
