package socketbus_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// hardClientHello returns the first flight a TLS client sends to
// serverName: a ClientHello record.
func hardClientHello(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	handshook := make(chan error, 1)
	go func() {
		handshook <- tls.Client(client, cfg).Handshake()
		client.Close()
	}()
	buf := make([]byte, 64<<10)
	n, err := server.Read(buf)
	if err != nil {
		t.Fatalf("capturing a ClientHello: %v", err)
	}
	server.Close()
	<-handshook
	return buf[:n]
}

// TestHardeningTLS: round trips over TLS with a self-signed certificate;
// a client that starts a TLS handshake and stalls is dropped at
// JoinTimeout; plain TCP against the TLS server, TLS against a plain
// server and TLS 1.1 all fail cleanly, and the server goes on serving.
func TestHardeningTLS(t *testing.T) {
	const joinTimeout = time.Second
	cert, pool := testpeer.Certificate(t)
	srv, addr := startServer(t, server.Config{
		TLSConfig:   &tls.Config{Certificates: []tls.Certificate{cert}},
		JoinTimeout: joinTimeout,
	})
	channel := socketbus.ChannelFromName("hard-tls")
	clientTLS := &tls.Config{RootCAs: pool}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a := dial(t, addr, channel, socketbus.WithTLS(clientTLS))
	b := dial(t, addr, channel, socketbus.WithTLS(clientTLS))
	roundTripOK := func(what string) {
		t.Helper()
		served := make(chan error, 1)
		go func() { served <- serveN(ctx, b, 1, upper) }()
		got, err := roundTrip(ctx, a, []byte("over tls"))
		if err != nil || string(got) != "OVER TLS" {
			t.Fatalf("TLS round trip %s: got %q, %v; want %q, nil", what, got, err, "OVER TLS")
		}
		if err := <-served; err != nil {
			t.Fatalf("TLS receiver %s: %v", what, err)
		}
	}
	roundTripOK("at the start")

	t.Run("stalled handshakes dropped at JoinTimeout", func(t *testing.T) {
		hello := hardClientHello(t, &tls.Config{ServerName: "127.0.0.1", RootCAs: pool})
		stalls := map[string][]byte{
			"nothing sent":             nil,
			"a record header":          hello[:5],
			"half a ClientHello":       hello[:len(hello)/2],
			"ClientHello, no Finished": hello,
		}
		var wg sync.WaitGroup
		for name, sent := range stalls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				c, err := hardDial(addr)
				if err != nil {
					t.Errorf("%s: dial: %v", name, err)
					return
				}
				defer c.Close()
				if len(sent) > 0 {
					if _, err := c.NC.Write(sent); err != nil {
						t.Errorf("%s: write: %v", name, err)
						return
					}
				}
				// The server's half of the handshake, if any, then EOF.
				n, err := io.Copy(io.Discard, c.NC)
				elapsed := time.Since(start)
				if err != nil {
					t.Errorf("%s: reading to the close: got %v after %d bytes, want EOF", name, err, n)
					return
				}
				if elapsed < joinTimeout || elapsed > joinTimeout+5*time.Second {
					t.Errorf("%s: closed after %v, want about the join timeout of %v", name, elapsed, joinTimeout)
				}
				t.Logf("stalled TLS handshake (%s): closed after %v, having read %d bytes of the server's", name, elapsed.Round(time.Millisecond), n)
			}()
		}
		wg.Wait()
	})

	t.Run("plain client against a TLS server", func(t *testing.T) {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		defer dcancel()
		start := time.Now()
		c, err := socketbus.Dial(dctx, addr, channel)
		if err == nil {
			c.Close()
			t.Fatalf("plain Dial to a TLS server: got a client, want an error")
		}
		if dctx.Err() != nil {
			t.Fatalf("plain Dial to a TLS server: failed only when its context ended (%v), want a prompt error", err)
		}
		t.Logf("plain Dial to a TLS server failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Client(nc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err := tc.Handshake(); err == nil {
			t.Fatalf("TLS 1.1 handshake: got version %#x, want a refusal", tc.ConnectionState().Version)
		} else {
			t.Logf("TLS 1.1 handshake refused: %v", err)
		}
	})

	t.Run("TLS client against a plain server", func(t *testing.T) {
		_, plainAddr := startServer(t, server.Config{})
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		defer dcancel()
		c, err := socketbus.Dial(dctx, plainAddr, channel, socketbus.WithTLS(clientTLS))
		if err == nil {
			c.Close()
			t.Fatalf("TLS Dial to a plain server: got a client, want an error")
		}
		if dctx.Err() != nil {
			t.Fatalf("TLS Dial to a plain server: failed only when its context ended (%v), want a prompt error", err)
		}
		t.Logf("TLS Dial to a plain server failed: %v", err)
	})

	roundTripOK("after the failed handshakes")
	if n := srv.Stats().Connections; n < 2 {
		t.Fatalf("open connections: got %d, want the 2 TLS clients", n)
	}
}

// TestHardeningAuth: Authenticate accepts one token per channel. The right
// token joins; a wrong one, another channel's, none, or any for an unknown
// channel fails Dial with ErrUnauthorized, and the refused connection sees
// one error frame (unauthorized) and a close, nothing of the channel: a
// request sent there finds no peer.
func TestHardeningAuth(t *testing.T) {
	alpha := socketbus.ChannelFromName("hard-auth-alpha")
	beta := socketbus.ChannelFromName("hard-auth-beta")
	tokens := map[socketbus.ID]string{alpha: "alpha-secret", beta: "beta-secret"}
	type call struct {
		client, channel socketbus.ID
		token           string
	}
	var mu sync.Mutex
	var calls []call
	srv, addr := startServer(t, server.Config{
		JoinTimeout: 2 * time.Second,
		Authenticate: func(client, channel socketbus.ID, token string) error {
			mu.Lock()
			calls = append(calls, call{client, channel, token})
			mu.Unlock()
			if want, ok := tokens[channel]; ok && token == want {
				return nil
			}
			return errors.New("wrong token for this channel")
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	id := uuid.New()
	a1 := dial(t, addr, alpha, socketbus.WithToken("alpha-secret"), socketbus.WithClientID(id))
	mu.Lock()
	got := calls[len(calls)-1]
	mu.Unlock()
	if got != (call{id, alpha, "alpha-secret"}) {
		t.Fatalf("Authenticate called with %x %x %q, want %x %x %q", got.client[:4], got.channel[:4], got.token, id[:4], alpha[:4], "alpha-secret")
	}
	a2 := dial(t, addr, alpha, socketbus.WithToken("alpha-secret"))
	b1 := dial(t, addr, beta, socketbus.WithToken("beta-secret"))

	refused := []struct {
		name    string
		channel socketbus.ID
		opts    []socketbus.DialOption
	}{
		{"wrong token", alpha, []socketbus.DialOption{socketbus.WithToken("guess")}},
		{"another channel's token", alpha, []socketbus.DialOption{socketbus.WithToken("beta-secret")}},
		{"no token", alpha, nil},
		{"unknown channel", socketbus.ChannelFromName("hard-auth-unknown"), []socketbus.DialOption{socketbus.WithToken("alpha-secret")}},
	}
	for _, tc := range refused {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := socketbus.Dial(dctx, addr, tc.channel, tc.opts...)
		dcancel()
		if !errors.Is(err, socketbus.ErrUnauthorized) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("Dial with %s: got %v, want ErrUnauthorized", tc.name, err)
		}
	}

	// A refused connection, by hand: it sees an error frame and a close,
	// and beta's only member still has no peer.
	c, err := hardDial(addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.Channel = beta
	join := c.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
	join.Final = true
	if err := c.Send(join, []byte("alpha-secret")); err != nil {
		t.Fatalf("join: %v", err)
	}
	h, code, err := c.Refusal()
	if err != nil || code != wire.CodeUnauthorized {
		t.Fatalf("refused join: got code %v, %v; want unauthorized, then EOF", code, err)
	}
	if h.RequestID != join.RequestID {
		t.Errorf("refusal answers join %x, want %x", h.RequestID[:4], join.RequestID[:4])
	}
	if _, err := roundTrip(ctx, b1, []byte("anyone?")); !errors.Is(err, socketbus.ErrNoPeers) {
		t.Fatalf("Send on beta after a refused join: got %v, want ErrNoPeers (the refused client is no member)", err)
	}
	if st := srv.Stats().Channel(beta); st.Clients != 1 {
		t.Fatalf("beta's members: got %d, want 1", st.Clients)
	}

	served := make(chan error, 1)
	go func() { served <- serveN(ctx, a2, 1, upper) }()
	if got, err := roundTrip(ctx, a1, []byte("authorized")); err != nil || string(got) != "AUTHORIZED" {
		t.Fatalf("round trip on alpha: got %q, %v; want %q, nil", got, err, "AUTHORIZED")
	}
	if err := <-served; err != nil {
		t.Fatalf("alpha receiver: %v", err)
	}
	mu.Lock()
	n := len(calls)
	mu.Unlock()
	t.Logf("auth: 3 joins accepted, %d refused with ErrUnauthorized and 1 by hand with an unauthorized error frame and a close; Authenticate called %d times; %s",
		len(refused), n, fmt.Sprintf("beta still has %d member", srv.Stats().Channel(beta).Clients))
}
