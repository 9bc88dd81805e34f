package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testhook"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// TestLogJoinAndClose checks the info lines of a connection's life and
// the debug lines of its requests.
func TestLogJoinAndClose(t *testing.T) {
	_, addr, logs := testpeer.LoggedServer(t, server.Config{})
	ch := socketbus.ChannelFromName("logs")
	var senderAddr string
	sender := dial(t, addr, ch, addrDialer(&senderAddr))
	receiver := dial(t, addr, ch)
	joined := logs.Wait(t, "connection joined", map[string]string{"remote": senderAddr})
	if joined.Attrs["client"] != sender.ID().String() || joined.Attrs["channel"] != ch.String() || joined.Attrs["tls"] != "false" {
		t.Errorf("join line %v, want client %s, channel %s, tls false", joined, sender.ID(), ch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serveN(ctx, receiver, 2, upper) }()
	for range 2 {
		if _, err := roundTrip(ctx, sender, []byte("hi")); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	sender.Close()
	closed := logs.Wait(t, "connection closed", map[string]string{"remote": senderAddr})
	if closed.Attrs["reason"] != "client closed" || closed.Attrs["requests_sent"] != "2" || closed.Attrs["requests_received"] != "0" ||
		closed.Attrs["duration"] == "" {
		t.Errorf("close line %v, want reason \"client closed\", 2 requests sent, 0 received, a duration", closed)
	}
	if n := len(logs.Find("request started", map[string]string{"remote": senderAddr})); n != 2 {
		t.Errorf("%d debug lines \"request started\" from the sender, want 2", n)
	}
}

// TestLogCuts checks that every kind of connection the server refuses or
// cuts logs a warning naming its remote address and reason, and counts
// in Stats.
func TestLogCuts(t *testing.T) {
	cases := []struct {
		name    string
		cfg     server.Config
		provoke func(t *testing.T, srv *server.Server, addr string) (local string) // returns the connection's local address
		msg     string                                                             // "connection refused" or "connection cut"
		reason  string
		code    string // of a protocol error
	}{
		{name: "protocol error", msg: "connection cut", reason: "protocol", code: "protocol",
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				r := testpeer.Join(t, addr, uuid.New())
				h := r.Header(wire.TypeStart, wire.FlagRequest, uuid.New())
				h.ClientID = uuid.New() // not the client it joined as
				r.WriteFrame(h, nil)
				return r.NC.LocalAddr().String()
			}},
		{name: "bad version", msg: "connection refused", reason: "protocol", code: "bad_version",
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				r := testpeer.Dial(t, addr)
				r.NC.Write(append([]byte{0x7f}, make([]byte, wire.HeaderSize-1)...))
				return r.NC.LocalAddr().String()
			}},
		{name: "keepalive", msg: "connection cut", reason: "keepalive", cfg: server.Config{PingInterval: 100 * time.Millisecond},
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				return testpeer.Join(t, addr, uuid.New()).NC.LocalAddr().String() // and never answers a ping
			}},
		{name: "join timeout", msg: "connection refused", reason: "join_timeout", cfg: server.Config{JoinTimeout: 100 * time.Millisecond},
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				return testpeer.Dial(t, addr).NC.LocalAddr().String() // and never joins
			}},
		{name: "unauthorized", msg: "connection refused", reason: "unauthorized",
			cfg: server.Config{Authenticate: func(_, _ socketbus.ID, _ string) error { return errors.New("no") }},
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				r := testpeer.Dial(t, addr)
				join := r.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
				join.Final = true
				r.Write(join, nil)
				return r.NC.LocalAddr().String()
			}},
		{name: "max connections", msg: "connection refused", reason: "limit", cfg: server.Config{MaxConnections: 1},
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				testpeer.Join(t, addr, uuid.New())
				return testpeer.Dial(t, addr).NC.LocalAddr().String()
			}},
		{name: "http", msg: "connection refused", reason: "http",
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				r := testpeer.Dial(t, addr)
				io.WriteString(r.NC, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				return r.NC.LocalAddr().String()
			}},
		{name: "memory", msg: "connection cut", reason: "memory", cfg: server.Config{MaxMemory: server.MinMaxMemory},
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				local := testpeer.Join(t, addr, uuid.New()).NC.LocalAddr().String()
				if !server.ChargeConn(srv, local, server.MinMaxMemory) {
					t.Fatalf("no joined connection from %s", local)
				}
				return local
			}},
		{name: "slow consumer", msg: "connection cut", reason: "slow_consumer", cfg: server.Config{WriteTimeout: 300 * time.Millisecond},
			provoke: func(t *testing.T, srv *server.Server, addr string) string {
				// A receiver that takes 40 requests and never reads: the
				// server writes up to a window of each (10 MiB) into a
				// socket that takes none of it, and its write times out.
				ch := uuid.New()
				nc := testpeer.StalledJoin(t, addr, ch, 40)
				sender := dial(t, addr, ch)
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				for range 40 {
					go sender.Send(ctx, testpeer.NewPattern(1, 1<<20), io.Discard)
				}
				return nc.LocalAddr().String()
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, addr, logs := testpeer.LoggedServer(t, tc.cfg)
			local := tc.provoke(t, srv, addr)
			want := map[string]string{"remote": local, "reason": tc.reason}
			if tc.code != "" {
				want["code"] = tc.code
			}
			rec := logs.Wait(t, tc.msg, want)
			if rec.Level != slog.LevelWarn {
				t.Errorf("%v: level %v, want warn", rec, rec.Level)
			}
			st := srv.Stats()
			counts := st.Refusals
			if tc.msg == "connection cut" {
				counts = st.Cuts
			}
			if counts[tc.reason] != 1 {
				t.Errorf("Stats counts %v for %s, want 1 (refusals %v, cuts %v)", counts[tc.reason], tc.reason, st.Refusals, st.Cuts)
			}
			if tc.code != "" && st.ProtocolErrors[tc.code] != 1 {
				t.Errorf("Stats.ProtocolErrors = %v, want 1 %s", st.ProtocolErrors, tc.code)
			}
		})
	}
}

// TestLogFlood sends 10,000 connections with a bad header from one
// address. Within one window of the limiter (made an hour long here, so
// that the machine's speed does not matter) the log holds at most 5
// warnings for that address and reason, and when the server closes, one
// line counting the 9,995 it suppressed.
func TestLogFlood(t *testing.T) {
	const conns = 10000
	srv, addr, logs := testpeer.LoggedServer(t, server.Config{})
	server.SetWarnWindow(srv, time.Hour)
	bad := append([]byte{0x7f}, make([]byte, wire.HeaderSize-1)...)
	var wg sync.WaitGroup
	work := make(chan struct{})
	errs := make(chan error, conns)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					continue
				}
				nc.Write(bad)
				// Read the refusal to its end, so that every connection
				// has been refused (and logged) before the count below.
				nc.SetDeadline(time.Now().Add(30 * time.Second))
				io.Copy(io.Discard, nc)
				nc.Close()
			}
		}()
	}
	for range conns {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	srv.Close()

	warned := logs.Find("connection refused", map[string]string{"reason": "protocol"})
	if len(warned) != 5 {
		t.Errorf("%d refusal warnings, want 5 (the limiter's burst)", len(warned))
	}
	if got := srv.Stats().Refusals["protocol"]; got != conns {
		t.Errorf("Stats.Refusals[protocol] = %d, want %d", got, conns)
	}
	summary := logs.Find("warnings suppressed", nil)
	if len(summary) != 1 || summary[0].Attrs["count"] != fmt.Sprint(conns-5) || !strings.Contains(summary[0].Attrs["top"], "127.0.0.1 protocol: 9995") {
		t.Errorf("summary lines %v, want one counting %d suppressed from 127.0.0.1", summary, conns-5)
	}
	if all := logs.All(); len(all) > 6 {
		t.Errorf("%d log lines, want at most 6: %v", len(all), all[:10])
	}
}

// TestLogInternalError checks that a connection closed by a panic in the
// server logs the error and a cut naming its address, and counts.
func TestLogInternalError(t *testing.T) {
	poison := uuid.New()
	poisoned := &testhook.Server{Handle: func(h *wire.Header) {
		if h.RequestID == poison {
			panic("test: poisoned frame")
		}
	}}
	srv, addr, logs := testpeer.LoggedServer(t, server.Config{})
	testhook.Set(srv, poisoned)
	t.Cleanup(func() { testhook.Set(srv, nil) })
	r := testpeer.Join(t, addr, uuid.New())
	r.WriteFrame(r.Header(wire.TypeStart, wire.FlagPing, poison), nil)
	local := r.NC.LocalAddr().String()
	logs.Wait(t, "connection cut", map[string]string{"remote": local, "reason": "internal"})
	if rs := logs.Find("internal error handling a frame; closing the connection", map[string]string{"remote": local}); len(rs) != 1 || rs[0].Level != slog.LevelError {
		t.Errorf("internal error lines %v, want one at error", rs)
	}
	if st := srv.Stats(); st.Cuts["internal"] != 1 || st.InternalErrors != 1 {
		t.Errorf("Stats: cuts %v, internal errors %d; want 1 internal cut and 1 internal error", st.Cuts, st.InternalErrors)
	}
}

// TestLogDrain checks the drain's lines: what it waits for, and what it
// cut when its context ended first.
func TestLogDrain(t *testing.T) {
	srv, addr, logs := testpeer.LoggedServer(t, server.Config{})
	ch := socketbus.ChannelFromName("drain")
	var senderAddr string
	sender, receiver := dial(t, addr, ch, addrDialer(&senderAddr)), dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- sender.Send(ctx, strings.NewReader("held"), io.Discard) }()
	req, err := receiver.Receive(ctx)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	defer req.Respond(strings.NewReader(""))

	// A second request, queued: the drain fails it at once. The server
	// handles a connection's frames in order, so once it has logged the
	// end of the second body it has queued the request.
	queued := make(chan error, 1)
	go func() { queued <- sender.Send(ctx, strings.NewReader("queued"), io.Discard) }()
	logs.WaitCount(t, "request body sent", map[string]string{"remote": senderAddr}, 2)
	if n := srv.Stats().Channel(ch).Queued; n != 1 {
		t.Fatalf("%d requests queued, want 1", n)
	}

	drainCtx, stop := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(drainCtx) }()
	begun := logs.Wait(t, "draining", nil)
	if begun.Attrs["requests_in_flight"] != "1" || begun.Attrs["queued_requests_failed"] != "1" || begun.Attrs["connections"] != "2" {
		t.Errorf("drain's first line %v, want 1 request in flight and 1 queued one failed, on 2 connections", begun)
	}
	if err := <-queued; !errors.Is(err, socketbus.ErrServerClosed) {
		t.Errorf("the queued request: %v, want ErrServerClosed", err)
	}
	stop() // the drain's time is up with the request still held
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	cut := logs.Wait(t, "drain cut short: closed connections with requests still in flight", nil)
	if cut.Level != slog.LevelWarn || cut.Attrs["requests_cut"] != "1" {
		t.Errorf("drain's last line %v, want a warning that 1 request was cut", cut)
	}
	if err := <-sent; err == nil {
		t.Error("the request cut by the drain succeeded")
	}
}
