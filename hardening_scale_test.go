//go:build unix

package socketbus_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// hardScaleEnv carries "addr count" to the helper process of
// TestHardeningManyConnections.
const hardScaleEnv = "SOCKETBUS_HARD_SCALE_CLIENTS"

// hardRaiseNoFile raises the soft RLIMIT_NOFILE to at least want, and the
// hard limit too if it must and may, and restores the soft limit when t
// ends.
func hardRaiseNoFile(t testing.TB, want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	old := lim
	lim.Cur = want
	lim.Max = max(lim.Max, want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE from %d (hard %d) to %d: %w", old.Cur, old.Max, want, err)
	}
	t.Cleanup(func() {
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		lim.Cur = old.Cur
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
	return nil
}

// TestHardeningManyConnections: 10,000 clients connected to one server at
// once, each doing one round trip (2,000 under the race detector, whose
// bookkeeping makes 10,000 take minutes). The clients run in a helper
// process, so that neither process needs more than one descriptor per
// connection. The server's live heap per idle connection is reported,
// and its goroutines per idle connection checked.
func TestHardeningManyConnections(t *testing.T) {
	n := 10000
	if hardRace || testing.Short() {
		n = 2000
	}
	if err := hardRaiseNoFile(t, uint64(n)+1000); err != nil {
		t.Skipf("cannot open %d connections: %v", n, err)
	}
	srv, addr := startServer(t, server.Config{})
	baseConns, baseline := srv.Stats().Connections, runtime.NumGoroutine()
	before := hardLiveHeap()

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHardeningScaleClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", hardScaleEnv, addr, n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("stdin: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout: %v", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the client process: %v", err)
	}
	var report string
	var childOut bytes.Buffer
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if r, ok := strings.CutPrefix(line, "hard-scale idle "); ok {
			report = r
			break
		}
		childOut.WriteString(line + "\n")
	}
	elapsed := time.Since(start)
	var conns, idleGoroutines int
	var perConn float64
	if report != "" {
		conns = srv.Stats().Connections - baseConns
		idleGoroutines = runtime.NumGoroutine() - baseline
		perConn = float64(hardLiveHeap()-before) / float64(conns)
	}
	stdin.Close() // the clients close and the helper exits
	io.Copy(&childOut, stdout)
	werr := cmd.Wait()
	if report == "" || werr != nil {
		t.Fatalf("client process: %v\nstdout:\n%s\nstderr:\n%s", werr, childOut.String(), stderr.String())
	}
	var ok, failed int
	var dialTime, tripTime string
	if _, err := fmt.Sscan(report, &ok, &failed, &dialTime, &tripTime); err != nil {
		t.Fatalf("client report %q: %v", report, err)
	}
	open, goroutines := hardSettle(t, srv, baseConns, baseline, 30*time.Second)
	t.Logf("%d concurrent connections on one server: %d round trips completed, %d failed; all joined in %v, round trips took %v; %d open at the server when idle; live heap per idle connection %.1f KiB (server side); after the clients left: %d connections over the baseline, %d goroutines over (total %v)",
		n, ok, failed, dialTime, tripTime, conns, perConn/1024, open-baseConns, max(goroutines-baseline, 0), elapsed.Round(time.Millisecond))
	if ok != n || failed != 0 {
		t.Errorf("round trips: got %d completed and %d failed, want %d and 0; the clients' stderr:\n%s", ok, failed, n, stderr.String())
	}
	if conns != n {
		t.Errorf("open connections at the server while the clients idled: got %d, want %d", conns, n)
	}
	// Two goroutines per idle connection, and their stacks: the one that
	// accepted it, which reads it, and its writer. (A third waited for
	// the two to end, before.)
	if idleGoroutines > 2*conns+100 {
		t.Errorf("%d goroutines at the server for %d idle connections, want at most 2 each", idleGoroutines, conns)
	}
	if open > baseConns || goroutines > baseline {
		t.Errorf("after the clients left: %d connections (baseline %d), %d goroutines (baseline %d)", open, baseConns, goroutines, baseline)
	}
}

// TestHardeningScaleClients is TestHardeningManyConnections' helper
// process: it connects the clients, has each send one request that
// another answers, prints "hard-scale idle <ok> <failed> <dial time>
// <round-trip time>", and waits for its stdin to close.
func TestHardeningScaleClients(t *testing.T) {
	spec := os.Getenv(hardScaleEnv)
	if spec == "" {
		t.Skip("the helper process of TestHardeningManyConnections")
	}
	var addr string
	var n int
	if _, err := fmt.Sscan(spec, &addr, &n); err != nil {
		t.Fatalf("%s=%q: %v", hardScaleEnv, spec, err)
	}
	if err := hardRaiseNoFile(t, uint64(n)+1000); err != nil {
		t.Fatalf("%v", err)
	}
	channel := socketbus.ChannelFromName("hard-scale")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	start := time.Now()
	clients := make([]*socketbus.Client, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var dialErr atomic.Pointer[error]
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := socketbus.Dial(ctx, addr, channel)
			if err != nil {
				dialErr.CompareAndSwap(nil, &err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := dialErr.Load(); err != nil {
		t.Fatalf("dial: %v", *err)
	}
	dialTime := time.Since(start)

	start = time.Now()
	stop := hardResponders(clients, 1, nil)
	var ok, failed atomic.Int64
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := "round trip " + strconv.Itoa(i)
			got, err := roundTrip(ctx, c, []byte(body))
			if err != nil || string(got) != strings.ToUpper(body) {
				if failed.Add(1) == 1 {
					fmt.Fprintf(os.Stderr, "first failed round trip: %q, %v\n", got, err)
				}
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	tripTime := time.Since(start)
	stop()
	fmt.Printf("hard-scale idle %d %d %v %v\n", ok.Load(), failed.Load(), dialTime.Round(time.Millisecond), tripTime.Round(time.Millisecond))
	io.Copy(io.Discard, os.Stdin)
}
