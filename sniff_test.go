package socketbus_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// TestWrongProtocol checks the answers to a client that speaks the wrong
// protocol to a port, each before the join timeout: a plain Dial to a TLS
// server fails with ErrTLSRequired, an HTTP request to a bus port gets a
// 400, and a Dial to an HTTP server that answers fails with ErrHTTPAnswer.
func TestWrongProtocol(t *testing.T) {
	cert, _ := testpeer.Certificate(t)
	// A long join timeout: only the new answers, not a timeout, pass.
	_, tlsAddr := startServer(t, server.Config{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, JoinTimeout: time.Minute})
	_, addr := startServer(t, server.Config{JoinTimeout: time.Minute})
	channel := socketbus.ChannelFromName("wrong-protocol")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("plain Dial to a TLS server", func(t *testing.T) {
		c, err := socketbus.Dial(ctx, tlsAddr, channel)
		if err == nil {
			c.Close()
			t.Fatal("got a client, want an error")
		}
		if !errors.Is(err, socketbus.ErrTLSRequired) || !errors.Is(err, socketbus.ErrProtocol) {
			t.Errorf("got %v, want ErrTLSRequired and ErrProtocol", err)
		}
	})
	t.Run("HTTP request to a bus port", func(t *testing.T) {
		for _, target := range []string{addr, tlsAddr} {
			hc := &http.Client{Timeout: 10 * time.Second}
			resp, err := hc.Get("http://" + target + "/")
			if err != nil {
				t.Fatalf("GET %s: %v", target, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			hc.CloseIdleConnections()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "bus port, not HTTP") {
				t.Errorf("GET %s: %s %q, want 400 saying it is a bus port", target, resp.Status, body)
			}
		}
	})
	t.Run("Dial to an HTTP server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\nnot for you\n")
		}()
		c, err := socketbus.Dial(ctx, ln.Addr().String(), channel)
		if err == nil {
			c.Close()
			t.Fatal("got a client, want an error")
		}
		if !errors.Is(err, socketbus.ErrHTTPAnswer) || !strings.Contains(err.Error(), "400 Bad Request: not for you") {
			t.Errorf("got %v, want ErrHTTPAnswer with the status and body", err)
		}
	})
	t.Run("raw garbage still gets bad_version", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(nc, "GETX"+strings.Repeat("x", 64))
		got, _ := io.ReadAll(nc)
		if len(got) < 70 || got[0] != 1 || !strings.Contains(string(got), "unsupported protocol version") {
			t.Errorf("answer %q, want an error frame about the version", got)
		}
	})
}
