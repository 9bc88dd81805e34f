package testpeer

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wsconn"
	"github.com/socketbus/socketbus/server"
)

// StartWebSocketServer runs a server with a WebSocket listener (and no
// TCP one) on a loopback port for the duration of the test, and returns
// its ws:// URL (wss:// with cfg.TLSConfig). When the test ends it checks
// that ServeWebSocket returned ErrServerClosed.
func StartWebSocketServer(t testing.TB, cfg server.Config) (*server.Server, string) {
	t.Helper()
	srv, addr := serveOnLoopback(t, cfg, (*server.Server).ServeWebSocket, "ServeWebSocket")
	scheme := "ws://"
	if cfg.TLSConfig != nil {
		scheme = "wss://"
	}
	return srv, scheme + addr + "/"
}

// WebSocketDialer is a dial option that makes the client reach url over
// WebSocket, sending origin as a browser would when it is not empty.
func WebSocketDialer(url, origin string, tlsCfg *tls.Config) socketbus.DialOption {
	return socketbus.WithDialer(func(ctx context.Context, _, _ string) (net.Conn, error) {
		return wsconn.Dial(ctx, url, wsconn.DialOptions{TLS: tlsCfg, Origin: origin})
	})
}
