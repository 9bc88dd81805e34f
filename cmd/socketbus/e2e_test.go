//go:build unix

package main

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/socketbus/socketbus"
)

// checkFailure checks that a command failed with status want and one line
// on stderr containing substr.
func checkFailure(t *testing.T, res result, want int, substr string) {
	t.Helper()
	if res.code != want {
		t.Errorf("exit status %d, want %d; stderr: %q", res.code, want, res.stderr)
	}
	if n := strings.Count(res.stderr, "\n"); n != 1 || !strings.HasSuffix(res.stderr, "\n") {
		t.Errorf("stderr has %d lines, want 1: %q", n, res.stderr)
	}
	if !strings.Contains(res.stderr, substr) {
		t.Errorf("stderr %q does not say %q", res.stderr, substr)
	}
}

// checkSuccess checks that a command exited 0, quietly, printing want.
func checkSuccess(t *testing.T, res result, want string) {
	t.Helper()
	if res.code != 0 || res.stderr != "" {
		t.Errorf("exit status %d, stderr %q; want 0 and nothing", res.code, res.stderr)
	}
	if res.stdout != want {
		t.Errorf("stdout %q, want %q", abbreviate(res.stdout), abbreviate(want))
	}
}

// checkDirHolds checks dir holds exactly the files names: no partial
// response, no temporary file.
func checkDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// abbreviate shortens s for a failure message.
func abbreviate(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// TestEndToEnd runs serve, receive and send as processes on loopback: the
// quick start, every way send can end, the metrics they leave, status and
// bench.
func TestEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil, "--monitor", "127.0.0.1:0", "--max-message-bytes", "4MiB")
	startReceiver(t, bin, srv, "--channel", "upper", "--exec", "tr a-z A-Z", "--concurrency", "2")
	startReceiver(t, bin, srv, "--channel", "fail", "--exec", "cat >/dev/null; echo 'no can do' >&2; exit 3")
	startReceiver(t, bin, srv, "--channel", "fail-late", "--exec", "head -c 200000 /dev/zero; echo 'gave up late' >&2; exit 1")
	send := func(stdin string, args ...string) result {
		t.Helper()
		return runCmd(t, bin, nil, stdin, append([]string{"send", "--server", srv.addr}, args...)...)
	}
	// What the server should count, by outcome.
	want := map[string]float64{}
	var bodyBytes int

	t.Run("data", func(t *testing.T) {
		checkSuccess(t, send("", "--channel", "upper", "--data", "hello, bus"), "HELLO, BUS")
		want["completed"]++
		bodyBytes += len("hello, bus")
	})
	t.Run("stdin", func(t *testing.T) {
		checkSuccess(t, send("from stdin\n", "--channel", "upper"), "FROM STDIN\n")
		want["completed"]++
		bodyBytes += len("from stdin\n")
	})
	t.Run("file to file", func(t *testing.T) {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
		if err := os.WriteFile(in, []byte("a file\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		checkSuccess(t, send("", "--channel-id", socketbus.ChannelFromName("upper").String(), "--file", in, "--out", out), "")
		got, err := os.ReadFile(out)
		if err != nil || string(got) != "A FILE\n" {
			t.Errorf("--out file holds %q (%v), want %q", got, err, "A FILE\n")
		}
		want["completed"]++
		bodyBytes += len("a file\n")
	})
	t.Run("3 MiB streamed with a progress bar", func(t *testing.T) {
		body := lowercase(3 << 20)
		res := send(body, "--channel", "upper", "--progress")
		if res.code != 0 || res.stdout != strings.ToUpper(body) {
			t.Errorf("exit status %d, %d bytes out (uppercase body: %v); want 0 and the %d bytes upper-cased; stderr %q",
				res.code, len(res.stdout), res.stdout == strings.ToUpper(body), len(body), abbreviate(res.stderr))
		}
		if !strings.Contains(res.stderr, "sending") || !strings.Contains(res.stderr, "receiving") {
			t.Errorf("stderr %q does not show a sending and a receiving bar", abbreviate(res.stderr))
		}
		want["completed"]++
		bodyBytes += len(body)
	})
	t.Run("server from the environment", func(t *testing.T) {
		res := runCmd(t, bin, []string{"SOCKETBUS_SERVER=" + srv.addr}, "", "send", "--channel", "upper", "--data", "env")
		checkSuccess(t, res, "ENV")
		want["completed"]++
		bodyBytes += len("env")
	})
	t.Run("no peers", func(t *testing.T) {
		checkFailure(t, send("", "--channel", "nobody-here", "--data", "x"), exitNoPeers, "no peers")
		want["no_peers"]++
	})
	t.Run("remote error", func(t *testing.T) {
		checkFailure(t, send("", "--channel", "fail", "--data", "x"), exitRemote, "no can do")
		want["remote_error"]++
	})
	t.Run("remote error after streaming", func(t *testing.T) {
		res := send("", "--channel", "fail-late", "--data", "x")
		if res.code != exitRemote || !strings.Contains(res.stderr, "gave up late") {
			t.Errorf("exit status %d, stderr %q; want %d and the command's stderr", res.code, res.stderr, exitRemote)
		}
		want["remote_error"]++
	})
	t.Run("too large", func(t *testing.T) {
		// A file's size is known: send refuses it before sending a byte,
		// and the server sees no request.
		dir := t.TempDir()
		path, out := filepath.Join(dir, "big"), filepath.Join(dir, "out")
		if err := os.WriteFile(path, []byte(lowercase(5<<20)), 0o644); err != nil {
			t.Fatal(err)
		}
		res := send("", "--channel", "upper", "--file", path, "--out", out)
		checkFailure(t, res, exitTooLarge, "over the server's limit of 4 MiB (its --max-message-bytes); nothing was sent")
		checkDirHolds(t, dir, "big")
		// A pipe's is not: the server cuts it off at the limit.
		checkFailure(t, send(lowercase(5<<20), "--channel", "upper", "--out", out), exitTooLarge, "too large")
		checkDirHolds(t, dir, "big")
		want["too_large"]++
	})
	t.Run("response cut short, --out left alone", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		res := send("", "--channel", "fail-late", "--data", "x", "--out", out)
		if res.code != exitRemote {
			t.Errorf("exit status %d, want %d; stderr %q", res.code, exitRemote, res.stderr)
		}
		checkDirHolds(t, dir)
		want["remote_error"]++
	})
	t.Run("connection refused", func(t *testing.T) {
		// send waits for a server that is down, here for 300 ms, and
		// says so first.
		res := runCmd(t, bin, nil, "", "send", "--server", closedPort(t), "--channel", "upper", "--data", "x", "--connect-timeout", "300ms")
		notice, rest, _ := strings.Cut(res.stderr, "\n")
		if !strings.Contains(notice, "does not answer; waiting for it for up to 300ms") {
			t.Errorf("the first line of stderr %q does not say send waits", notice)
		}
		res.stderr = rest
		checkFailure(t, res, exitUnreachable, "connection refused")
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"--channel", "upper", "--data", "x", "--file", "y"},
			{"--data", "x"},
			{"--channel-id", "not-a-uuid", "--data", "x"},
			{"--channel", "upper", "--no-such-flag"},
			{"--channel", "upper", "extra-argument"},
		} {
			res := send("", args...)
			checkFailure(t, res, exitUsage, "--help")
			if res.stdout != "" {
				t.Errorf("send %v wrote %q to stdout", args, res.stdout)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		families := scrape(t, srv.monitor+"/metrics")
		requests := families["socketbus_requests_total"]
		if requests == nil {
			t.Fatalf("no socketbus_requests_total in /metrics")
		}
		var started float64
		for _, m := range requests.GetMetric() {
			outcome := m.GetLabel()[0].GetValue()
			if got := m.GetCounter().GetValue(); got != want[outcome] {
				t.Errorf("socketbus_requests_total{outcome=%q} = %v, want %v", outcome, got, want[outcome])
			}
			if outcome != "no_peers" {
				started += m.GetCounter().GetValue()
			}
		}
		if got := value(t, families, "socketbus_requests_started_total"); got != started {
			t.Errorf("socketbus_requests_started_total = %v, want %v", got, started)
		}
		if got := families["socketbus_request_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); float64(got) != started {
			t.Errorf("socketbus_request_duration_seconds count = %v, want %v", got, started)
		}
		if got := value(t, families, "socketbus_requests_in_flight"); got != 0 {
			t.Errorf("socketbus_requests_in_flight = %v, want 0", got)
		}
		// Three receivers are connected; the senders have gone.
		if got := value(t, families, "socketbus_connections"); got != 3 {
			t.Errorf("socketbus_connections = %v, want 3", got)
		}
		if got := value(t, families, "socketbus_received_bytes_total"); got < float64(bodyBytes) {
			t.Errorf("socketbus_received_bytes_total = %v, want at least the %d body bytes sent", got, bodyBytes)
		}
		if got := value(t, families, "socketbus_sent_bytes_total"); got < float64(bodyBytes) {
			t.Errorf("socketbus_sent_bytes_total = %v, want at least the %d body bytes sent", got, bodyBytes)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		resp, err := http.Get(srv.monitor + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz: %s, want 200", resp.Status)
		}
	})
	t.Run("status", func(t *testing.T) {
		monitor := strings.TrimPrefix(srv.monitor, "http://")
		res := runCmd(t, bin, nil, "", "status", "--monitor", monitor)
		if res.code != 0 {
			t.Fatalf("status: exit %d, stderr %q", res.code, res.stderr)
		}
		upper := socketbus.ChannelFromName("upper").String()
		if !strings.Contains(res.stdout, upper) || !strings.Contains(res.stdout, "total (3 channels)") {
			t.Errorf("status table does not list channel %s among 3:\n%s", upper, res.stdout)
		}
		res = runCmd(t, bin, nil, "", "status", "--monitor", srv.monitor, "--json")
		var rep statusReport
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("status --json: %v\n%s", err, res.stdout)
		}
		if rep.Connections != 3 || len(rep.Channels) != 3 || rep.Requests["completed"] != int64(want["completed"]) {
			t.Errorf("status --json: %d connections, %d channels, %d completed; want 3, 3, %v",
				rep.Connections, len(rep.Channels), rep.Requests["completed"], want["completed"])
		}
		for _, c := range rep.Channels {
			if c.ID == upper && (c.Clients != 1 || c.ReceiversWaiting != 2) {
				t.Errorf("channel upper: %d clients, %d receivers waiting; want 1 and 2 (--concurrency 2)", c.Clients, c.ReceiversWaiting)
			}
		}
	})
	t.Run("bench", func(t *testing.T) {
		res := runCmd(t, bin, nil, "", "bench", "--server", srv.addr, "--count", "5", "--duration", "100ms", "--large-count", "2", "--large-size", "1MiB")
		if res.code != 0 {
			t.Fatalf("bench: exit %d, stderr %q", res.code, res.stderr)
		}
		for _, w := range []string{"lat", "tput", "large"} {
			if !strings.Contains(res.stdout, "\n"+w+" ") {
				t.Errorf("bench table has no %s row:\n%s", w, res.stdout)
			}
		}
		// Figures for users: no columns of the targets.
		head, _, _ := strings.Cut(res.stdout, "\n")
		if strings.Join(strings.Fields(head), " ") != "WORKLOAD CLIENTS SIZE REQUESTS ELAPSED REQ/S MB/S P50 P99 MAX" {
			t.Errorf("bench table heading %q, want figures only", head)
		}
	})
}

// TestTimeouts checks both ways a request times out: the sender's
// --timeout, and the server's --default-timeout for requests without one.
func TestTimeouts(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil, "--default-timeout", "300ms")
	// The command never answers: it waits on a pipe no one writes to, and
	// is killed when the request times out.
	startReceiver(t, bin, srv, "--channel", "stuck", "--concurrency", "2", "--exec", "cat "+mkfifo(t, "never"))
	for _, args := range [][]string{
		{"--timeout", "300ms"},
		{},
	} {
		res := runCmd(t, bin, nil, "", append([]string{"send", "--server", srv.addr, "--channel", "stuck", "--data", "x"}, args...)...)
		checkFailure(t, res, exitTimeout, "timed out")
	}
}

// TestReceivePrintsARequest checks receive without --exec: it prints one
// request's body and answers it empty.
func TestReceivePrintsARequest(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil)
	recv := startReceiver(t, bin, srv, "--channel", "inbox")
	res := runCmd(t, bin, nil, "a message\n", "send", "--server", srv.addr, "--channel", "inbox")
	checkSuccess(t, res, "")
	if code := recv.wait(); code != 0 || recv.stdout.String() != "a message\n" {
		t.Errorf("receive: exit %d, stdout %q; want 0 and the body", code, recv.stdout)
	}
}

// TestShutdownDrains sends SIGTERM to serve while a request is in the
// hands of a receiver: the request finishes, new connections are refused,
// /healthz turns 503, and serve exits 0.
func TestShutdownDrains(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil, "--monitor", "127.0.0.1:0")
	started, release := mkfifo(t, "started"), mkfifo(t, "release")
	// The command says it has the request, then waits for the test.
	startReceiver(t, bin, srv, "--channel", "slow", "--exec",
		"echo started > "+started+"; cat "+release+" >/dev/null; tr a-z A-Z")
	sender := startProc(t, bin, nil, "send", "--server", srv.addr, "--channel", "slow", "--data", "finish me")

	// Opening the FIFO blocks until the command opens it: the request is
	// in flight.
	if _, err := os.ReadFile(started); err != nil {
		t.Fatal(err)
	}
	srv.signal(syscall.SIGTERM)
	srv.waitLine(srv.stderr, "shutting down")

	resp, err := http.Get(srv.monitor + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz while draining: %s, want 503", resp.Status)
	}
	res := runCmd(t, bin, nil, "", "send", "--server", srv.addr, "--channel", "slow", "--data", "too late")
	if res.code != exitUnreachable {
		t.Errorf("send while draining: exit %d (%q), want %d", res.code, res.stderr, exitUnreachable)
	}

	if err := os.WriteFile(release, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(); code != 0 {
		t.Errorf("serve: exit %d, want 0; stderr:\n%s", code, srv.stderr)
	}
	code := sender.wait()
	if code != 0 || sender.stdout.String() != "FINISH ME" {
		t.Errorf("in-flight send: exit %d, stdout %q, stderr %q; want 0 and %q", code, sender.stdout, sender.stderr, "FINISH ME")
	}
}

// scrape GETs url and parses it as the Prometheus text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return families
}

// value returns the value of the unlabelled gauge or counter name.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f := families[name]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("/metrics has no single %s", name)
	}
	m := f.GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// lowercase returns n random lowercase letters and newlines.
func lowercase(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz\n"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}
