package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// TestHardeningKeepalive: a peer that goes silent without closing (its
// reads block, its writes vanish: a half-open connection) is noticed by
// the other side's keepalive within a few ping intervals.
func TestHardeningKeepalive(t *testing.T) {
	const ping = 200 * time.Millisecond

	// The server notices a silent receiver, and the requests it held fail
	// at their senders with ErrPeerGone.
	t.Run("server notices a silent client", func(t *testing.T) {
		const held = 3
		srv, addr := startServer(t, server.Config{PingInterval: ping})
		channel := socketbus.ChannelFromName("hard-keepalive-server")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sender := dial(t, addr, channel)
		conns := make(chan *hardStallConn, 1)
		silent := dial(t, addr, channel, hardStallDialer(true, 0, conns), socketbus.WithPingInterval(-1))
		sc := <-conns

		sendErrs := make(chan error, held)
		returned := make(chan time.Time, held)
		for i := range held {
			go func() {
				_, err := roundTrip(ctx, sender, []byte(fmt.Sprintf("held %d", i)))
				returned <- time.Now()
				sendErrs <- err
			}()
		}
		for range held {
			req, err := silent.Receive(ctx)
			if err != nil {
				t.Fatalf("silent client Receive: %v", err)
			}
			if _, err := io.ReadAll(req.Body); err != nil {
				t.Fatalf("silent client reading a body: %v", err)
			}
		}
		if st := srv.Stats().Channel(channel); st.InFlight != held {
			t.Fatalf("requests held by the silent client: got %d, want %d", st.InFlight, held)
		}
		sc.Stall()
		start := time.Now()
		var first, last time.Duration
		for i := range held {
			at, err := <-returned, <-sendErrs
			if !errors.Is(err, socketbus.ErrPeerGone) {
				t.Errorf("Send held by the silent client: got %v, want ErrPeerGone", err)
			}
			if i == 0 {
				first = at.Sub(start)
			}
			last = at.Sub(start)
		}
		t.Logf("server keepalive (PingInterval %v): the silent client's %d held requests failed with ErrPeerGone at their senders %v to %v after it went silent (%.1f to %.1f intervals)",
			ping, held, first.Round(time.Millisecond), last.Round(time.Millisecond), float64(first)/float64(ping), float64(last)/float64(ping))
		if first < 2*ping || last > 4*ping+time.Second {
			t.Errorf("silent client noticed after %v to %v, want between 2 ping intervals (%v) and 4 intervals plus scheduling slack", first, last, 2*ping)
		}
	})

	// A client notices a silent server: its Send and Receive in flight
	// fail, and the Send's receiver sees the request end.
	t.Run("client notices a silent server", func(t *testing.T) {
		_, addr := startServer(t, server.Config{PingInterval: -1})
		channel := socketbus.ChannelFromName("hard-keepalive-client")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		holder := dial(t, addr, channel)
		conns := make(chan *hardStallConn, 1)
		client := dial(t, addr, channel, hardStallDialer(true, 0, conns), socketbus.WithPingInterval(ping))
		sc := <-conns

		sendErr := make(chan error, 1)
		sendAt := make(chan time.Time, 1)
		go func() {
			err := client.Send(ctx, bytes.NewReader([]byte("left hanging")), io.Discard)
			sendAt <- time.Now()
			sendErr <- err
		}()
		req, err := holder.Receive(ctx)
		if err != nil {
			t.Fatalf("holder Receive: %v", err)
		}
		if _, err := io.ReadAll(req.Body); err != nil {
			t.Fatalf("holder reading the body: %v", err)
		}
		receiveErr := make(chan error, 1)
		receiveAt := make(chan time.Time, 1)
		go func() {
			_, err := client.Receive(ctx)
			receiveAt <- time.Now()
			receiveErr <- err
		}()
		sc.Stall()
		start := time.Now()
		at, err := <-sendAt, <-sendErr
		sendAfter := at.Sub(start)
		if !errors.Is(err, socketbus.ErrDisconnected) || errors.Is(err, socketbus.ErrClosed) {
			t.Errorf("Send in flight when the server went silent: got %v, want ErrDisconnected (connection lost), not ErrClosed", err)
		}
		at, err = <-receiveAt, <-receiveErr
		receiveAfter := at.Sub(start)
		if !errors.Is(err, socketbus.ErrDisconnected) || errors.Is(err, socketbus.ErrClosed) {
			t.Errorf("Receive in flight when the server went silent: got %v, want ErrDisconnected (connection lost), not ErrClosed", err)
		}
		// The client closed its socket, so the server ends the request.
		<-req.Context().Done()
		if err := req.Respond(bytes.NewReader([]byte("too late"))); err == nil {
			t.Errorf("holder Respond after the sender's client gave up: got nil, want an error")
		}
		t.Logf("client keepalive (WithPingInterval %v): Send failed %v and Receive %v after the server went silent (%.1f intervals); the holder's request ended: %v",
			ping, sendAfter.Round(time.Millisecond), receiveAfter.Round(time.Millisecond), float64(sendAfter)/float64(ping), context.Cause(req.Context()))
		// Keepalive counts from the last frame the client read, not from
		// the stall: with v2 nothing answers the request, so that frame
		// can be the pong of an idle ping up to one interval before the
		// stall (it was measured at 1.99 intervals after the stall once).
		// So: at least one interval after the stall, and the close comes
		// 2 to 2.5 intervals after the last frame.
		if sendAfter < ping || sendAfter > 4*ping+time.Second {
			t.Errorf("silent server noticed after %v, want between 1 ping interval (%v) after the stall and 4 intervals plus scheduling slack", sendAfter, ping)
		}
	})
}
