//go:build unix

package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVersion checks "socketbus version" and "socketbus --version" print
// the module version, commit and Go version the binary was built with, as
// "go version -m" reads them from the binary.
func TestVersion(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	wantVersion, wantCommit := "(devel)", "unknown"
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			wantVersion = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			wantCommit = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	res := runCmd(t, bin, nil, "", "version")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("version: exit %d, stderr %q; want 0 and nothing", res.code, res.stderr)
	}
	for _, want := range []string{"socketbus " + wantVersion + "\n", "commit    " + wantCommit, "go        " + runtime.Version()} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("version printed %q, want it to contain %q", res.stdout, want)
		}
	}
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		flag := runCmd(t, bin, nil, "", args...)
		if flag.code != 0 || flag.stdout != res.stdout {
			t.Errorf("%s: exit %d, stdout %q; want 0 and what version prints, %q", args[0], flag.code, flag.stdout, res.stdout)
		}
	}
}

// TestVersionString checks what version prints for a binary with and
// without VCS information.
func TestVersionString(t *testing.T) {
	b := buildInfo{version: "v1.2.3", revision: "abc123", modified: true, goVer: "go1.99"}
	for _, want := range []string{"socketbus v1.2.3\n", "commit    abc123 (modified)\n", "go        go1.99 "} {
		if got := b.String(); !strings.Contains(got, want) {
			t.Errorf("String() = %q, want it to contain %q", got, want)
		}
	}
	b = buildInfo{version: "(devel)", goVer: "go1.99"}
	if got := b.String(); !strings.Contains(got, "socketbus (devel)\n") || !strings.Contains(got, "commit    unknown") {
		t.Errorf("String() = %q, want (devel) and an unknown commit", got)
	}
}

// TestHelpUnknownTopic checks "socketbus help nosuch" is a usage error,
// and help for a real topic still succeeds.
func TestHelpUnknownTopic(t *testing.T) {
	bin := buildBinary(t)
	for _, args := range [][]string{{"help", "nosuch"}, {"help", "send", "nosuch"}} {
		res := runCmd(t, bin, nil, "", args...)
		checkFailure(t, res, exitUsage, "no help topic")
		if res.stdout != "" {
			t.Errorf("%v wrote %q to stdout, want nothing", args, abbreviate(res.stdout))
		}
	}
	res := runCmd(t, bin, nil, "", "help", "send")
	if res.code != 0 || !strings.Contains(res.stdout, "socketbus send [flags]") {
		t.Errorf("help send: exit %d, stdout %q; want 0 and send's usage", res.code, abbreviate(res.stdout))
	}
}

// TestServerDefaultPort checks --server without a port dials the default
// port, 7411, for an IPv4 address and a bracketed IPv6 one. The test holds
// the port with a listener of its own and sees the join arrive; it skips
// an address whose port is taken, or that the machine lacks.
func TestServerDefaultPort(t *testing.T) {
	bin := buildBinary(t)
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		t.Run(host, func(t *testing.T) {
			ln, err := net.Listen("tcp", host+":"+defaultPort)
			if err != nil {
				t.Skipf("cannot hold %s:%s: %v", host, defaultPort, err)
			}
			defer ln.Close()
			// The join is read whole before the connection closes, so it
			// is in joined by the time send has exited.
			joined := make(chan []byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(waitLimit))
				join := make([]byte, 68)
				if _, err := io.ReadFull(c, join); err == nil {
					joined <- join
				}
			}()
			res := runCmd(t, bin, nil, "", "send", "--server", host, "--channel", "upper", "--data", "x")
			select {
			case join := <-joined:
				if join[0] != 3 {
					t.Errorf("first byte %#x, want the protocol version 3", join[0])
				}
			default:
				t.Fatalf("send --server %s did not connect to port %s: exit %d, stderr %q", host, defaultPort, res.code, res.stderr)
			}
			// The listener closed without answering, as an old TLS server
			// would: the line names the address and suggests --tls.
			for _, want := range []string{host + ":" + defaultPort, "without answering the join: if it requires TLS, connect with --tls"} {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr %q does not say %q", res.stderr, want)
				}
			}
		})
	}
}

// TestWrongProtocolHints checks a client speaking the wrong protocol to a
// port hears what is probably wrong, at once: a plain client to a TLS
// server and a TLS client to a plain one are told about --tls, send to the
// monitor port is told it is the monitor and where the bus is, and an HTTP
// client on the bus port gets a 400 saying it is a bus port. The join
// timeout is long, so that only the new answers, not a timeout's, pass.
func TestWrongProtocolHints(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil, "--monitor", "127.0.0.1:0", "--join-timeout", "30s")
	dir := t.TempDir()
	cert, key := writeCertificate(t, dir)
	tlsSrv := startServer(t, bin, nil, "--tls-cert", cert, "--tls-key", key, "--join-timeout", "30s")
	monitor := strings.TrimPrefix(srv.monitor, "http://")
	send := func(args ...string) result {
		t.Helper()
		return runCmd(t, bin, nil, "", append([]string{"send", "--channel", "upper", "--data", "x"}, args...)...)
	}

	t.Run("plain client, TLS server", func(t *testing.T) {
		res := send("--server", tlsSrv.addr)
		checkFailure(t, res, exitUnreachable, "requires TLS: connect with --tls")
	})
	t.Run("TLS client, plain server", func(t *testing.T) {
		res := send("--server", srv.addr, "--tls-insecure")
		checkFailure(t, res, exitUnreachable, "the server did not answer TLS: is it a plain (non-TLS) server? drop --tls")
	})
	t.Run("send to the monitor port", func(t *testing.T) {
		res := send("--server", monitor)
		checkFailure(t, res, exitUnreachable, "the server answered HTTP")
		for _, want := range []string{"is this the monitor port?", "the bus is at " + srv.addr} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("stderr %q does not say %q", res.stderr, want)
			}
		}
	})
	t.Run("TLS client to the monitor port", func(t *testing.T) {
		res := send("--server", monitor, "--tls-insecure")
		checkFailure(t, res, exitUnreachable, "the server answered HTTP, not TLS: is this the monitor port?")
	})
	// Both below would wait for the join timeout, 30 s, without the
	// answer; 4 s is under even the default join timeout of 5 s.
	const answerWithin = 4 * time.Second
	t.Run("raw HTTP request on the bus port", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(answerWithin))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: "+srv.addr+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("reading the answer: %v (got %q)", err, got)
		}
		if !strings.HasPrefix(string(got), "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(string(got), "this is a socketbus bus port, not HTTP") {
			t.Errorf("answer %q, want a 400 saying it is a bus port", got)
		}
	})
	t.Run("HTTP client on the bus port", func(t *testing.T) {
		hc := &http.Client{Timeout: answerWithin}
		resp, err := hc.Post("http://"+srv.addr+"/status", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hc.CloseIdleConnections()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "--monitor") {
			t.Errorf("POST to the bus port: %s %q, want 400 and a body pointing at --monitor", resp.Status, body)
		}
	})
	// The server still serves after all that.
	startReceiver(t, bin, srv, "--channel", "upper", "--exec", "tr a-z A-Z")
	checkSuccess(t, send("--server", srv.addr), "X")
}

// TestStatusWithoutMonitor checks status says how to get a monitoring
// endpoint when nothing listens at --monitor, and passes on what the bus
// port says when --monitor names it.
func TestStatusWithoutMonitor(t *testing.T) {
	bin := buildBinary(t)
	res := runCmd(t, bin, nil, "", "status", "--monitor", closedPort(t))
	checkFailure(t, res, exitUnreachable, "connection refused")
	for _, want := range []string{"serve --monitor 127.0.0.1:", "status --monitor"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr %q does not say %q", res.stderr, want)
		}
	}
	srv := startServer(t, bin, nil)
	res = runCmd(t, bin, nil, "", "status", "--monitor", srv.addr)
	checkFailure(t, res, exitOther, "400 Bad Request: this is a socketbus bus port, not HTTP")
}

// TestSendInterrupted sends SIGINT to send while the receiver holds the
// request: send exits 130, and its progress bar never claims 100%, though
// the body, of unknown size, was read to its end.
func TestSendInterrupted(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil)
	got, release := mkfifo(t, "got"), mkfifo(t, "release")
	// The command reads the whole body, says so, then waits for the test.
	startReceiver(t, bin, srv, "--channel", "hold", "--exec", "cat >/dev/null; echo got > "+got+"; cat "+release)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sender := startProcIn(t, bin, nil, pr, "send", "--server", srv.addr, "--channel", "hold", "--progress")
	pr.Close()
	if _, err := io.WriteString(pw, lowercase(2<<20)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// Opening the FIFO blocks until the command opens it: send has read
	// its body to the end and sent it.
	if _, err := os.ReadFile(got); err != nil {
		t.Fatal(err)
	}
	sender.signal(syscall.SIGINT)
	if code := sender.wait(); code != 130 {
		t.Errorf("send after SIGINT: exit %d, want 130; stderr %q", code, abbreviate(sender.stderr.String()))
	}
	stderr := sender.stderr.String()
	if !strings.Contains(stderr, "sending") || strings.Contains(stderr, "100%") {
		t.Errorf("stderr %q: want a sending bar short of 100%%", stderr)
	}
	if !strings.HasSuffix(stderr, "socketbus send: interrupted by SIGINT\n") {
		t.Errorf("stderr %q does not end saying send was interrupted", stderr)
	}
}
