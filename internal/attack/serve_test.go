//go:build linux

package attack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLimit bounds building the binary and waiting for a server to say
// where it listens: reaching it is a failure.
const startLimit = 2 * time.Minute

// built is the binary buildServe built, once for all the tests.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildServe builds the socketbus command without the race detector, even
// when the tests run with it, so that the memory figures are the server's
// own and not the detector's shadow memory.
func buildServe(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "socketbus-attack")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		bin := filepath.Join(dir, "socketbus")
		ctx, cancel := context.WithTimeout(context.Background(), startLimit)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/socketbus/socketbus/cmd/socketbus").CombinedOutput()
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

// removeBuilt deletes the directory buildServe built into.
func removeBuilt() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// supportsMaxMemory says whether `serve` has the --max-memory flag. The
// suite runs against servers with and without it: without it the memory
// ceiling is not asserted, only reported.
func supportsMaxMemory(t *testing.T, bin string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("socketbus serve --help: %v\n%s", err, out)
	}
	return bytes.Contains(out, []byte("--max-memory"))
}

// serveProc is a running `socketbus serve`.
type serveProc struct {
	cmd    *exec.Cmd
	addr   string
	ws     string // its WebSocket URL, when started with --websocket
	stderr *syncBuffer
	exited chan struct{} // closed once Wait has returned
	err    error         // Wait's result, once exited is closed
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServe runs `socketbus serve` on a free loopback port with args
// added, waits until it says where it listens, and kills it when the test
// ends.
func startServe(t *testing.T, bin string, args ...string) *serveProc {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, args...)
	p := &serveProc{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOCKETBUS_") {
			env = append(env, kv)
		}
	}
	p.cmd.Env = env
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting socketbus %s: %v", strings.Join(args, " "), err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		const prefix, wsPrefix = "socketbus listening on ", "socketbus websocket on "
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, wsPrefix) {
				p.ws = strings.TrimPrefix(l, wsPrefix) // printed before the TCP address
			} else if strings.HasPrefix(l, prefix) {
				addrc <- strings.TrimPrefix(l, prefix)
				break
			}
		}
		io.Copy(io.Discard, stdout) // Wait waits for this reader to finish
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	timer := time.NewTimer(startLimit)
	defer timer.Stop()
	select {
	case p.addr = <-addrc:
	case <-p.exited:
		t.Fatalf("socketbus serve exited (%v) before listening; stderr:\n%s", p.err, p.stderr)
	case <-timer.C:
		t.Fatalf("socketbus serve did not say where it listens within %v; stderr:\n%s", startLimit, p.stderr)
	}
	return p
}

// kill stops the process, if it still runs, and waits for it.
func (p *serveProc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// alive reports whether the process is still running, and if not how it
// ended.
func (p *serveProc) alive() (bool, error) {
	select {
	case <-p.exited:
		if p.err == nil {
			return false, errors.New("exited with status 0")
		}
		return false, p.err
	default:
		return true, nil
	}
}

// vmHWM returns the process's peak resident set size (VmHWM in
// /proc/PID/status), in bytes.
func (p *serveProc) vmHWM() (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM line %q: %w", l, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM line in /proc/PID/status")
}
