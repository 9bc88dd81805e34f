//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// labelled returns the value of the series of family name whose labels
// include want, and whether there is one.
func labelled(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, m := range families[name].GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match == len(want) {
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// getJSON GETs url and decodes its JSON into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", url, err)
	}
}

// dialLib joins channel on addr with the library's client and closes it
// when the test ends.
func dialLib(t *testing.T, addr string, channel socketbus.ID, opts ...socketbus.DialOption) *socketbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := socketbus.Dial(ctx, addr, channel, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answer makes c answer n requests with their body in upper case.
func answer(ctx context.Context, c *socketbus.Client, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for range n {
			req, err := c.Receive(ctx)
			if err != nil {
				done <- err
				return
			}
			body, err := io.ReadAll(req.Body)
			if err == nil {
				err = req.Respond(bytes.NewReader(bytes.ToUpper(body)))
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// roundTrip sends body from c and checks the answer is body in upper case.
func roundTrip(t *testing.T, ctx context.Context, c *socketbus.Client, body string) {
	t.Helper()
	var out bytes.Buffer
	if err := c.Send(ctx, strings.NewReader(body), &out); err != nil {
		t.Fatalf("send: %v", err)
	}
	if out.String() != strings.ToUpper(body) {
		t.Fatalf("answer %q, want %q", out.String(), strings.ToUpper(body))
	}
}

// TestMonitoring runs serve with a tokens file and a monitor, sends known
// traffic, and checks /connz, /status, the per-channel and server series
// of /metrics (parsed with expfmt) and status --conns.
func TestMonitoring(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("orders s3cret\nlonely s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bin, nil, "--monitor", "127.0.0.1:0", "--tokens", tokens)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	orders := socketbus.ChannelFromName("orders")
	sender := dialLib(t, srv.addr, orders, socketbus.WithToken("s3cret"))
	receiver := dialLib(t, srv.addr, orders, socketbus.WithToken("s3cret"))
	done := answer(ctx, receiver, 3)
	for range 3 {
		roundTrip(t, ctx, sender, "order")
	}
	if err := <-done; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	lonely := dialLib(t, srv.addr, socketbus.ChannelFromName("lonely"), socketbus.WithToken("s3cret"))
	if err := lonely.Send(ctx, strings.NewReader("x"), io.Discard); !errors.Is(err, socketbus.ErrNoPeers) {
		t.Fatalf("send on a channel of one: %v, want ErrNoPeers", err)
	}
	_, err := socketbus.Dial(ctx, srv.addr, orders, socketbus.WithToken("guess"))
	if !errors.Is(err, socketbus.ErrUnauthorized) {
		t.Fatalf("dial with a wrong token: %v, want ErrUnauthorized", err)
	}

	var connz connzReport
	getJSON(t, srv.monitor+"/connz", &connz)
	var s *connReport
	joined := 0
	for i, c := range connz.Connections {
		if c.Client == sender.ID().String() {
			s = &connz.Connections[i]
		}
		if c.Joined {
			joined++
		}
	}
	// The refused connection may still be listed, unjoined, while the
	// server drains what its client sent.
	if joined != 3 || s == nil {
		t.Fatalf("/connz: %+v, want the 3 joined clients, the sender among them", connz.Connections)
	}
	if s.ChannelName != "orders" || s.Channel != orders.String() || s.Sent != 3 || s.Received != 0 || s.Sending != 0 ||
		s.BytesIn == 0 || s.FramesOut == 0 || !strings.HasPrefix(s.Remote, "127.0.0.1:") || s.AgeSeconds <= 0 {
		t.Errorf("/connz sender: %+v, want channel orders, 3 sent, traffic, a loopback address", *s)
	}

	most := connz.Connections[0]
	for _, c := range connz.Connections {
		if c.BytesIn > most.BytesIn {
			most = c
		}
	}
	var top connzReport
	getJSON(t, srv.monitor+"/connz?sort=bytes_in&limit=1", &top)
	if top.Total < 3 || len(top.Connections) != 1 || top.Connections[0].Client != most.Client {
		t.Errorf("/connz?sort=bytes_in&limit=1: %d of %d, %+v; want %s, which sent the most, of at least 3", len(top.Connections), top.Total, top.Connections, most.Client)
	}

	var st statusReport
	getJSON(t, srv.monitor+"/status", &st)
	if st.Accepted != 4 || st.Joined != 3 {
		t.Errorf("/status: %d accepted, %d joined; want 4 and 3 (the wrong token)", st.Accepted, st.Joined)
	}
	if st.Version == "" || !strings.HasPrefix(st.GoVersion, "go") || st.StartTime.IsZero() || st.UptimeSeconds <= 0 ||
		st.Refused["unauthorized"] != 1 {
		t.Errorf("/status: version %q, go %q, start %v, uptime %v, refused %v; want all set and 1 unauthorized",
			st.Version, st.GoVersion, st.StartTime, st.UptimeSeconds, st.Refused)
	}

	m := scrape(t, srv.monitor+"/metrics")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"socketbus_channel_requests_total", map[string]string{"channel": "orders", "outcome": "completed"}, 3},
		{"socketbus_channel_requests_total", map[string]string{"channel": "lonely", "outcome": "no_peers"}, 1},
		{"socketbus_channel_clients", map[string]string{"channel": "orders"}, 2},
		{"socketbus_channel_clients", map[string]string{"channel": "lonely"}, 1},
		{"socketbus_channel_clients", map[string]string{"channel": "other"}, 0},
		{"socketbus_connections_refused_total", map[string]string{"reason": "unauthorized"}, 1},
		{"socketbus_connections_cut_total", map[string]string{"reason": "slow_consumer"}, 0},
		{"socketbus_protocol_errors_total", map[string]string{"code": "protocol"}, 0},
	} {
		if got, ok := labelled(m, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := labelled(m, "socketbus_build_info", map[string]string{"go_version": st.GoVersion}); !ok {
		t.Errorf("no socketbus_build_info with go_version %s", st.GoVersion)
	}
	if start := value(t, m, "socketbus_start_time_seconds"); start < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("socketbus_start_time_seconds = %v, want about now", start)
	}
	if limit := value(t, m, "socketbus_memory_limit_bytes"); limit != server.DefaultMaxMemory {
		t.Errorf("socketbus_memory_limit_bytes = %v, want %d", limit, server.DefaultMaxMemory)
	}

	res := runCmd(t, bin, nil, "", "status", "--monitor", srv.monitor, "--conns")
	if res.code != 0 || !strings.Contains(res.stdout, sender.ID().String()) || !strings.Contains(res.stdout, "orders") ||
		!strings.Contains(res.stdout, " connections\n") {
		t.Errorf("status --conns: status %d, stdout:\n%s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	res = runCmd(t, bin, nil, "", "status", "--monitor", srv.monitor)
	if res.code != 0 || !strings.Contains(res.stdout, "orders ("+orders.String()+")") || !strings.Contains(res.stdout, "unauthorized 1") {
		t.Errorf("status: status %d, stdout:\n%s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	// The refusal is in the log, with the client's address.
	srv.waitLine(srv.stderr, "connection refused")
	if l := srv.stderr.line("connection refused"); !strings.Contains(l, "remote=127.0.0.1:") || !strings.Contains(l, "reason=unauthorized") ||
		!strings.Contains(l, "channel_name=orders") {
		t.Errorf("refusal log line %q, want the remote address, the reason and the channel name", l)
	}
}

// serverCert dials addr with TLS, trusting pool, and returns the
// certificate the server presents.
func serverCert(t *testing.T, addr string, pool *x509.CertPool) *x509.Certificate {
	t.Helper()
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer tc.Close()
	return tc.ConnectionState().PeerCertificates[0]
}

// readCert adds the PEM certificate in file to pool and returns its DER
// bytes.
func readCert(t *testing.T, file string, pool *x509.CertPool) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificate", file)
	}
	block, _ := pem.Decode(b)
	return block.Bytes
}

// TestReloadOnSIGHUP runs serve with TLS and a tokens file, keeps a pair
// of clients connected and talking throughout, and sends SIGHUP three
// times: after replacing the tokens and the certificate (new joins see
// both, the pair goes on), after breaking the certificate file (the old
// settings stay and the log says why), and the process never exits.
func TestReloadOnSIGHUP(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cert, key := writeCertificate(t, dir)
	certB, keyB := writeCertificate(t, t.TempDir())
	pool := x509.NewCertPool()
	derA, derB := readCert(t, cert, pool), readCert(t, certB, pool)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("rotate old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bin, nil, "--tls-cert", cert, "--tls-key", key, "--tokens", tokens, "--monitor", "127.0.0.1:0")
	ch := socketbus.ChannelFromName("rotate")
	tlsOpt := socketbus.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sender := dialLib(t, srv.addr, ch, tlsOpt, socketbus.WithToken("old-token"))
	receiver := dialLib(t, srv.addr, ch, tlsOpt, socketbus.WithToken("old-token"))
	done := answer(ctx, receiver, 3)
	roundTrip(t, ctx, sender, "before")
	if got := serverCert(t, srv.addr, pool); !bytes.Equal(got.Raw, derA) {
		t.Fatal("the server does not present the certificate of --tls-cert")
	}

	// Rotate: a new token instead of the old, the second certificate.
	if err := os.WriteFile(tokens, []byte("rotate new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{certB: cert, keyB: key} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			t.Fatal(err)
		}
	}
	srv.signal(syscall.SIGHUP)
	srv.waitLine(srv.stderr, "msg=reloaded")

	if got := serverCert(t, srv.addr, pool); !bytes.Equal(got.Raw, derB) {
		t.Error("after SIGHUP the server does not present the new certificate")
	}
	if _, err := socketbus.Dial(ctx, srv.addr, ch, tlsOpt, socketbus.WithToken("old-token")); !errors.Is(err, socketbus.ErrUnauthorized) {
		t.Errorf("join with the removed token after SIGHUP: %v, want ErrUnauthorized", err)
	}
	dialLib(t, srv.addr, ch, tlsOpt, socketbus.WithToken("new-token"))
	roundTrip(t, ctx, sender, "after") // joined with the old token: still running

	// A reload that fails keeps the settings it could not load.
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.signal(syscall.SIGHUP)
	l := srv.waitLine(srv.stderr, "reload failed")
	if !strings.Contains(l, "certificate") {
		t.Errorf("failed reload's line %q does not say the certificate failed", l)
	}
	if got := serverCert(t, srv.addr, pool); !bytes.Equal(got.Raw, derB) {
		t.Error("after a failed reload the server does not present the certificate it had")
	}
	dialLib(t, srv.addr, ch, tlsOpt, socketbus.WithToken("new-token"))
	roundTrip(t, ctx, sender, "still")
	if err := <-done; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	select {
	case <-srv.exited:
		t.Fatalf("serve exited (status %d) after SIGHUP", srv.exitCode)
	default:
	}
	var st statusReport
	getJSON(t, srv.monitor+"/status", &st)
	if st.Reloads != 2 || st.ReloadFailures != 1 || st.LastReload == nil || !strings.Contains(st.LastReload.Error, "certificate") {
		t.Errorf("/status: %d reloads, %d failed, last %+v; want 2, 1 and the certificate's error", st.Reloads, st.ReloadFailures, st.LastReload)
	}
	m := scrape(t, srv.monitor+"/metrics")
	if got := value(t, m, "socketbus_reloads_total"); got != 2 {
		t.Errorf("socketbus_reloads_total = %v, want 2", got)
	}
	if got := value(t, m, "socketbus_reload_failures_total"); got != 1 {
		t.Errorf("socketbus_reload_failures_total = %v, want 1", got)
	}
}

// TestStatusNamesChannels checks that status names a channel that the
// CLI's clients joined by name, with no tokens file to name it.
func TestStatusNamesChannels(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil, "--monitor", "127.0.0.1:0")
	startReceiver(t, bin, srv, "--channel", "jobs", "--exec", "cat")
	res := runCmd(t, bin, nil, "", "status", "--monitor", srv.monitor)
	if res.code != 0 || !strings.Contains(res.stdout, "jobs ("+socketbus.ChannelFromName("jobs").String()+")") {
		t.Errorf("status: status %d, stdout:\n%s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	if l := srv.waitLine(srv.stderr, "connection joined"); !strings.Contains(l, "channel_name=jobs") {
		t.Errorf("join line %q, want channel_name=jobs", l)
	}
}
