package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/internal/wsconn"
)

// WebSocket: browsers cannot open TCP connections, so the server also
// accepts clients over WebSocket (RFC 6455). The connection then speaks
// exactly what a TCP connection speaks, frames of docs/PROTOCOL.md, carried
// in binary WebSocket messages as a byte stream (section 22): after the
// upgrade, internal/wsconn adapts the WebSocket to a net.Conn and the server
// serves it like any other, with the same join, tokens, limits and memory
// budget.

// Limits of the WebSocket listener.
const (
	// wsMaxMessage bounds a message from a client (docs/PROTOCOL.md
	// section 22). The adapter reads a message in pieces into a fixed
	// buffer, so nothing is allocated by a message's declared length; the
	// bound closes a connection that sends a larger one (status 1009).
	wsMaxMessage = 1 << 20
	// wsMaxHeaderBytes bounds the upgrade request's header.
	wsMaxHeaderBytes = 16 << 10
)

// ServeWebSocket accepts WebSocket connections on ln, a listener of TCP
// connections, and serves each as a client connection, as Serve does for
// TCP: the upgrade request (any path) is answered, then the connection
// joins and carries frames in binary messages. With Config.TLSConfig the
// listener speaks TLS (wss://) and the upgrade and its request header must
// arrive within JoinTimeout. Config.WebSocketOrigins says which browser
// pages may connect. It closes ln when it returns, and always returns a
// non-nil error; after Shutdown or Close, an error matching
// socketbus.ErrServerClosed; at once, when Config.Cluster did not attach,
// that error, as Serve.
func (s *Server) ServeWebSocket(ln net.Listener) error {
	if err := s.track(ln); err != nil {
		return err
	}
	defer s.untrack(ln)

	secure := s.cfg.TLSConfig != nil
	inner := ln
	if secure {
		cfg := serverTLS(s.cfg.TLSConfig)
		cfg.NextProtos = []string{"http/1.1"} // a WebSocket upgrade is HTTP/1.1
		inner = tls.NewListener(ln, cfg)
	}
	hs := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.upgradeWebSocket(w, r, secure) }),
		ReadHeaderTimeout: s.cfg.JoinTimeout,
		MaxHeaderBytes:    wsMaxHeaderBytes,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
		ErrorLog:          log.New(slogWriter{s}, "", 0),
	}
	err := hs.Serve(inner)
	hs.Close() // upgrades still in progress; upgraded connections are the server's
	select {
	case <-s.done:
		return wire.ErrServerClosed
	default:
	}
	return fmt.Errorf("socketbus: serve websocket: %w", err)
}

// upgradeWebSocket answers one upgrade request: a page from an origin not
// allowed gets 403, anything that is not a WebSocket upgrade the library's
// error answer (426 and the like), and an upgraded connection is served.
func (s *Server) upgradeWebSocket(w http.ResponseWriter, r *http.Request, secure bool) {
	if origin, sent := requestOrigin(r); sent && !originAllowed(origin, s.cfg.WebSocketOrigins) {
		s.warns.warn(r.RemoteAddr, "websocket origin", "websocket: refused a page from an origin not in WebSocketOrigins",
			"remote", r.RemoteAddr, "origin", origin)
		http.Error(w, "socketbus: this origin may not connect (serve --websocket-origins)", http.StatusForbidden)
		return
	}
	hw := &hijackRecorder{ResponseWriter: w}
	ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // the origin was checked above, by our own rule
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept has answered the request
	}
	ws.SetReadLimit(wsMaxMessage)
	s.startConnAs(&serverConn{s: s, nc: wsconn.New(ws, hw.raw), ws: true, tls: secure})
}

// requestOrigin returns the request's Origin header and whether it has one.
func requestOrigin(r *http.Request) (string, bool) {
	v := r.Header.Values("Origin")
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// originAllowed reports whether a page from origin may connect, by the
// rule of Config.WebSocketOrigins.
func originAllowed(origin string, allowed []string) bool {
	u, err := url.Parse(origin)
	for _, a := range allowed {
		switch {
		case a == "*":
			return true
		case strings.Contains(a, "://"):
			if strings.EqualFold(a, origin) {
				return true
			}
		case err == nil && u.Host != "" && strings.EqualFold(a, u.Host):
			return true
		}
	}
	return false
}

// hijackRecorder keeps the connection the WebSocket library hijacks, so
// that the adapter can bound its close handshake.
type hijackRecorder struct {
	http.ResponseWriter
	raw net.Conn
}

// Hijack implements http.Hijacker.
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("socketbus: the HTTP server cannot hijack the connection")
	}
	nc, brw, err := hj.Hijack()
	h.raw = nc
	return nc, brw, err
}

// slogWriter passes the HTTP server's own log lines (TLS handshake
// failures and the like) to the server's rate-limited warnings.
type slogWriter struct{ s *Server }

func (w slogWriter) Write(p []byte) (int, error) {
	w.s.warns.warn("", "websocket http", "websocket: the HTTP server failed a connection", "err", strings.TrimSpace(string(p)))
	return len(p), nil
}
