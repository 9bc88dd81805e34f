package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
)

// startServer runs a server on a loopback port for the duration of the test.
func startServer(t testing.TB, cfg socketbus.ServerConfig) (*socketbus.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := socketbus.NewServer(cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, socketbus.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, ln.Addr().String()
}

// dial joins channel on addr and closes the client when the test ends.
// Its clients do not reconnect, unless opts say otherwise: most tests check
// what one connection does (reconnect_test.go checks reconnecting).
func dial(t testing.TB, addr string, channel socketbus.ID, opts ...socketbus.DialOption) *socketbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]socketbus.DialOption{noReconnect}, opts...)
	c, err := socketbus.Dial(ctx, addr, channel, opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// noReconnect is the policy of a client that closes when its connection is
// lost.
var noReconnect = socketbus.WithReconnect(socketbus.ReconnectPolicy{MaxAttempts: -1})

// serveN answers n requests on c with transform applied to each body; it
// reports failures on errs.
func serveN(ctx context.Context, c *socketbus.Client, n int, transform func([]byte) []byte) error {
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

func upper(b []byte) []byte { return bytes.ToUpper(b) }

// roundTrip sends body from c and returns the response.
func roundTrip(ctx context.Context, c *socketbus.Client, body []byte) ([]byte, error) {
	var out bytes.Buffer
	err := c.Send(ctx, bytes.NewReader(body), &out)
	return out.Bytes(), err
}

// twoClients starts a server with the default configuration and joins two
// clients to the channel named name.
func twoClients(t testing.TB, name string) (a, b *socketbus.Client) {
	t.Helper()
	_, addr := startServer(t, socketbus.ServerConfig{})
	ch := socketbus.ChannelFromName(name)
	return dial(t, addr, ch), dial(t, addr, ch)
}
