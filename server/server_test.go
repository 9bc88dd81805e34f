package server_test

import (
	"errors"
	"net"
	"testing"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// TestServeAfterClose: Serve on a closed server returns at once with an
// error matching the client's sentinel, and closes the listener.
func TestServeAfterClose(t *testing.T) {
	srv := server.New(server.Config{})
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if err := srv.Serve(ln); !errors.Is(err, socketbus.ErrServerClosed) {
		t.Fatalf("Serve after Close: got %v, want an error matching socketbus.ErrServerClosed", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on the listener after Serve returned: got %v, want net.ErrClosed", err)
	}
}
