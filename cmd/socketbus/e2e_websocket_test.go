//go:build unix

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
)

// TestWebSocketServe runs serve with --websocket, TLS and tokens: a Go
// client over wss:// with the channel's token reaches a receive --exec
// over TCP, a wrong token is refused, and a page from an origin not in
// --websocket-origins gets 403 while a listed one upgrades.
func TestWebSocketServe(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cert, key := writeCertificate(t, dir)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("web s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bin, nil, "--tls-cert", cert, "--tls-key", key, "--tokens", tokens,
		"--websocket", "127.0.0.1:0", "--websocket-origins", "https://good.example,app.example:8443")
	url := strings.TrimPrefix(srv.stdout.line("socketbus websocket on "), "socketbus websocket on ")
	if !strings.HasPrefix(url, "wss://127.0.0.1:") {
		t.Fatalf("serve printed the websocket address %q, want wss://127.0.0.1:PORT/", url)
	}
	startReceiver(t, bin, srv, "--channel", "web", "--tls-ca", cert, "--token", "s3cret", "--exec", "tr a-z A-Z")

	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: pool}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	channel := socketbus.ChannelFromName("web")
	c, err := socketbus.Dial(ctx, "websocket", channel, testpeer.NoReconnect, socketbus.WithToken("s3cret"),
		testpeer.WebSocketDialer(url, "https://good.example", tlsCfg))
	if err != nil {
		t.Fatalf("dial over wss: %v", err)
	}
	defer c.Close()
	got, err := testpeer.RoundTrip(ctx, c, []byte("over websocket"))
	if err != nil || string(got) != "OVER WEBSOCKET" {
		t.Fatalf("round trip over wss to receive --exec: got %q, %v; want %q, nil", got, err, "OVER WEBSOCKET")
	}
	_, err = socketbus.Dial(ctx, "websocket", channel, testpeer.NoReconnect, socketbus.WithToken("guess"),
		testpeer.WebSocketDialer(url, "", tlsCfg))
	if !errors.Is(err, socketbus.ErrUnauthorized) {
		t.Errorf("dial over wss with a wrong token: got %v, want ErrUnauthorized", err)
	}

	for origin, want := range map[string]int{
		"https://evil.example":     http.StatusForbidden,
		"https://app.example:8443": http.StatusSwitchingProtocols,
	} {
		req, err := http.NewRequest("GET", strings.Replace(url, "wss://", "https://", 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": origin} {
			req.Header.Set(k, v)
		}
		tr := &http.Transport{TLSClientConfig: tlsCfg}
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("upgrade from %s: %v", origin, err)
		}
		res.Body.Close()
		tr.CloseIdleConnections()
		if res.StatusCode != want {
			t.Errorf("upgrade from origin %s: got status %d, want %d", origin, res.StatusCode, want)
		}
	}
}
