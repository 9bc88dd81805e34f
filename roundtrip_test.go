package socketbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

func TestRoundTrip(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("roundtrip")
	a := dial(t, addr, ch)
	b := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveN(ctx, b, 1, upper) }()
	got, err := roundTrip(ctx, a, []byte("hello"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if string(got) != "HELLO" {
		t.Fatalf("response = %q, want %q", got, "HELLO")
	}
	if err := <-served; err != nil {
		t.Fatalf("receiver: %v", err)
	}
}
