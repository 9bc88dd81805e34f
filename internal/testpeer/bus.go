package testpeer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// StartServer runs a server on a loopback port for the duration of the
// test, and checks when the test ends that Serve returned ErrServerClosed.
func StartServer(t testing.TB, cfg server.Config) (*server.Server, string) {
	t.Helper()
	return serveOnLoopback(t, cfg, (*server.Server).Serve, "Serve")
}

// serveOnLoopback runs a new server's serve (Serve or ServeWebSocket) on a
// loopback listener until the test ends, then checks that it returned
// ErrServerClosed; it returns the server and the listener's address.
func serveOnLoopback(t testing.TB, cfg server.Config, serve func(*server.Server, net.Listener) error, name string) (*server.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := server.New(cfg)
	served := make(chan error, 1)
	go func() { served <- serve(srv, ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, socketbus.ErrServerClosed) {
			t.Errorf("%s returned %v, want ErrServerClosed", name, err)
		}
	})
	return srv, ln.Addr().String()
}

// NoReconnect is the policy of a client that closes when its connection
// is lost.
var NoReconnect = socketbus.WithReconnect(socketbus.ReconnectPolicy{MaxAttempts: -1})

// DialClient joins channel on addr and closes the client when the test
// ends. Its clients do not reconnect, unless opts say otherwise: most
// tests check what one connection does.
func DialClient(t testing.TB, addr string, channel socketbus.ID, opts ...socketbus.DialOption) *socketbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]socketbus.DialOption{NoReconnect}, opts...)
	c, err := socketbus.Dial(ctx, addr, channel, opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// AddrDialer is a dial option that records the local address of the
// connection the client opens in *local.
func AddrDialer(local *string) socketbus.DialOption {
	return socketbus.WithDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil {
			*local = nc.LocalAddr().String()
		}
		return nc, err
	})
}

// ServeN answers n requests on c with transform applied to each body.
func ServeN(ctx context.Context, c *socketbus.Client, n int, transform func([]byte) []byte) error {
	for i := 0; i < n; i++ {
		req, err := c.Receive(ctx)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return err
		}
		if err := req.Respond(bytes.NewReader(transform(body))); err != nil {
			return err
		}
	}
	return nil
}

// Upper is the transform most tests' receivers apply.
func Upper(b []byte) []byte { return bytes.ToUpper(b) }

// RoundTrip sends body from c and returns the response.
func RoundTrip(ctx context.Context, c *socketbus.Client, body []byte) ([]byte, error) {
	var out bytes.Buffer
	err := c.Send(ctx, bytes.NewReader(body), &out)
	return out.Bytes(), err
}
