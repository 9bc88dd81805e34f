package socketbus_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestGatherRefusesAPlainResponse: a server (here a hostile one) that
// answers a gather with a plain response stream, not a member's reply,
// breaks the protocol: the client closes the connection and the gather
// fails at once, rather than buffering the stream nobody reads until the
// deadline.
func TestGatherRefusesAPlainResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			defer nc.Close()
			read := func() (wire.Header, error) {
				b := make([]byte, wire.HeaderSize)
				if _, err := io.ReadFull(nc, b); err != nil {
					return wire.Header{}, err
				}
				h, _, err := wire.ParseHeader(b)
				if err != nil {
					return h, err
				}
				_, err = io.CopyN(io.Discard, nc, int64(h.Length))
				return h, err
			}
			write := func(h wire.Header, p []byte) error {
				h.Length = uint32(len(p))
				_, err := nc.Write(append(wire.AppendHeader(nil, &h), p...))
				return err
			}
			join, err := read()
			if err != nil {
				return err
			}
			ack := join
			ack.Final = true
			if err := write(ack, make([]byte, 12)); err != nil {
				return err
			}
			start, err := read() // the gather
			if err != nil {
				return err
			}
			resp := wire.Header{Version: start.Version, Type: wire.TypeStart, Flags: wire.FlagResponse,
				RequestID: start.RequestID, ClientID: wire.ID{1}, ChannelID: start.ChannelID}
			if err := write(resp, wire.NoHeaders); err != nil {
				return err
			}
			chunk := resp
			chunk.Type, chunk.Sequence = wire.TypeChunk, 1
			if err := write(chunk, []byte("not a reply")); err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, nc) // until the client closes
			return err
		}()
	}()
	c := dial(t, ln.Addr().String(), socketbus.ChannelFromName("hostile-gather"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Gather(ctx, []byte("x"))
	if err == nil || errors.Is(err, socketbus.ErrTimeout) || time.Since(start) > 10*time.Second {
		t.Fatalf("Gather answered with a plain response: %v after %v; want a protocol failure at once", err, time.Since(start))
	}
	t.Logf("Gather: %v", err)
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("the fake server: %v", err)
	}
}
