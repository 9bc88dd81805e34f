package server_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// TestHardeningForgedFrames: a joined raw connection forges frames to
// answer, or peek at, a request that is not its to answer. The victim, a
// real Client, must never see a forged body: every Send returns the
// genuine response (or an error); and every forger gets a protocol error
// frame and a close.
func TestHardeningForgedFrames(t *testing.T) {
	srv, addr := startServer(t, server.Config{})
	channel := socketbus.ChannelFromName("hard-forged")
	other := socketbus.ChannelFromName("hard-forged-other")
	victim := dial(t, addr, channel)
	holder := dial(t, addr, channel) // the honest receiver
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	forged := []byte("FORGED RESPONSE")
	var tried, accepted, closed, dropped int

	// forge runs one scenario in which holder, not the forger, holds the
	// victim's request: attack gets the request's ID (the worst case: the
	// forger guessed it) and a forger joined to forgerChannel, and writes
	// its forgery.
	//
	// A forger that sends an error frame for a request it never started is
	// not thrown out: a sender's cancel may cross its request's end on the
	// wire, so the server drops such frames (ignored is true). The
	// victim's request must be untouched all the same.
	forge := func(name string, forgerChannel socketbus.ID, ignored bool, attack func(f *testpeer.Conn, id socketbus.ID) []byte) {
		t.Run(name, func(t *testing.T) {
			tried++
			f, err := hardJoin(addr, forgerChannel, "")
			if err != nil {
				t.Fatalf("forger join: %v", err)
			}
			defer f.Close()
			body := []byte("request " + name)
			result := make(chan []byte, 1)
			sendErr := make(chan error, 1)
			go func() {
				got, err := roundTrip(ctx, victim, body)
				result <- got
				sendErr <- err
			}()
			req, err := holder.Receive(ctx)
			if err != nil {
				t.Fatalf("holder Receive: %v", err)
			}
			if _, err := io.ReadAll(req.Body); err != nil {
				t.Fatalf("holder reading the body: %v", err)
			}
			if _, err := f.NC.Write(attack(f, req.ID)); err != nil {
				t.Fatalf("writing the forgery: %v", err)
			}
			if ignored {
				if _, err := f.Ping(); err != nil {
					t.Errorf("forger after a frame the server should drop: %v", err)
				} else {
					dropped++
				}
			} else if h, code, err := f.Refusal(); err != nil || code != wire.CodeProtocol || h.Flags != 0 {
				t.Errorf("forger: got code %v flags %v (%v), want a protocol error frame with no flags and a close", code, h.Flags, err)
			} else {
				closed++
			}
			if err := req.Respond(bytes.NewReader(upper(body))); err != nil {
				t.Fatalf("holder Respond after the forgery: %v", err)
			}
			got, err := <-result, <-sendErr
			if bytes.Equal(got, forged) || bytes.Contains(got, forged) {
				accepted++
			}
			if err != nil || !bytes.Equal(got, upper(body)) {
				t.Errorf("victim Send: got %q, %v; want the genuine %q", got, err, upper(body))
			}
		})
	}

	forge("response in the holder's name", channel, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		return hardResponseFrames(holder.ID(), channel, id, forged)
	})
	forge("response in the victim's name", channel, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		return hardResponseFrames(victim.ID(), channel, id, forged)
	})
	forge("response to a request never received", channel, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		return hardResponseFrames(f.ID, channel, id, forged)
	})
	forge("response chunk without a start", channel, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		b := hardResponseFrames(f.ID, channel, id, forged)
		return b[wire.HeaderSize:] // chunk and end only
	})
	forge("error frame failing the request", channel, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		h := f.Header(wire.TypeError, wire.FlagResponse, id)
		p := wire.AppendError(nil, wire.CodeRemote, string(forged))
		h.Final, h.Length = true, uint32(len(p))
		return append(wire.AppendHeader(nil, &h), p...)
	})
	forge("cancel of another client's request", channel, true, func(f *testpeer.Conn, id socketbus.ID) []byte {
		h := f.Header(wire.TypeError, wire.FlagRequest, id)
		p := wire.AppendError(nil, wire.CodeCancelled, "forged cancel")
		h.Final, h.Length = true, uint32(len(p))
		return append(wire.AppendHeader(nil, &h), p...)
	})
	forge("response from another channel, naming the victim's", other, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		return hardResponseFrames(f.ID, channel, id, forged)
	})
	forge("response from another channel, naming its own", other, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		return hardResponseFrames(f.ID, other, id, forged)
	})
	forge("receive on another channel", other, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		h := f.Header(wire.TypeStart, wire.FlagReceive, uuid.New())
		h.ChannelID, h.Final = channel, true
		return wire.AppendHeader(nil, &h)
	})
	forge("credit for another client's response", channel, false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		h := f.Header(wire.TypeChunk, wire.FlagCredit|wire.FlagResponse, id)
		h.ClientID = victim.ID()
		p := wire.AppendCredit(nil, 1<<20)
		h.Length = uint32(len(p))
		return append(wire.AppendHeader(nil, &h), p...)
	})

	// A second response from the connection that did hold the request:
	// after its first, complete response (the request is over, so its
	// frames are no longer late ones the server would drop), and after an
	// incomplete one.
	second := func(name string, complete bool, attack func(f *testpeer.Conn, id socketbus.ID) []byte) {
		t.Run(name, func(t *testing.T) {
			tried++
			f, err := hardJoin(addr, channel, "")
			if err != nil {
				t.Fatalf("forger join: %v", err)
			}
			defer f.Close()
			poll := f.Header(wire.TypeStart, wire.FlagReceive, uuid.New())
			poll.Final = true
			if err := f.Send(poll, nil); err != nil {
				t.Fatalf("forger poll: %v", err)
			}
			if _, err := f.Ping(); err != nil {
				t.Fatalf("forger poll: %v", err)
			}
			body := []byte("request " + name)
			result := make(chan []byte, 1)
			sendErr := make(chan error, 1)
			go func() {
				got, err := roundTrip(ctx, victim, body)
				result <- got
				sendErr <- err
			}()
			req, err := f.ReceiveRequest()
			id, got := req.ID, req.Body
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("forger receiving the request: got %q, %v; want %q", got, err, body)
			}
			first := hardResponseFrames(f.ID, channel, id, []byte("FIRST ANSWER"))
			if !complete {
				first = first[:len(first)-wire.HeaderSize] // no end frame
			}
			if _, err := f.NC.Write(append(first, attack(f, id)...)); err != nil {
				t.Fatalf("writing the responses: %v", err)
			}
			h, code, err := f.Refusal()
			if err != nil || code != wire.CodeProtocol || h.Flags != 0 {
				t.Errorf("forger: got code %v flags %v (%v), want a protocol error frame with no flags and a close", code, h.Flags, err)
			} else {
				closed++
			}
			got, err = <-result, <-sendErr
			if bytes.Contains(got, forged) {
				accepted++
			}
			if complete {
				if err != nil || string(got) != "FIRST ANSWER" {
					t.Errorf("victim Send: got %q, %v; want the first answer alone", got, err)
				}
			} else if err == nil {
				t.Errorf("victim Send of an unfinished response whose writer was thrown out: got %q, nil; want an error", got)
			}
		})
	}
	second("second response after a complete one", true, func(f *testpeer.Conn, id socketbus.ID) []byte {
		return hardResponseFrames(f.ID, channel, id, forged)
	})
	second("chunk after the final frame", true, func(f *testpeer.Conn, id socketbus.ID) []byte {
		h := f.Header(wire.TypeChunk, wire.FlagResponse, id)
		h.Sequence, h.Length = 3, uint32(len(forged))
		return append(wire.AppendHeader(nil, &h), forged...)
	})
	second("second response start inside the first", false, func(f *testpeer.Conn, id socketbus.ID) []byte {
		return hardResponseFrames(f.ID, channel, id, forged)
	})

	// The victim's connection is intact.
	served := make(chan error, 1)
	go func() { served <- serveN(ctx, holder, 1, upper) }()
	if got, err := roundTrip(ctx, victim, []byte("still mine")); err != nil || string(got) != "STILL MINE" {
		t.Fatalf("victim round trip after the forgeries: got %q, %v; want %q, nil", got, err, "STILL MINE")
	}
	if err := <-served; err != nil {
		t.Fatalf("holder: %v", err)
	}
	t.Logf("forged frames: %d forgeries tried, %d forged responses accepted by the victim, %d forgers refused with a protocol error and closed, %d forged cancels dropped harmlessly; server outcomes %v",
		tried, accepted, closed, dropped, srv.Stats().Requests)
	if accepted != 0 {
		t.Errorf("forged responses accepted: got %d, want 0", accepted)
	}
	if closed+dropped != tried {
		t.Errorf("forgers refused and closed, or their frames dropped: got %d and %d of %d", closed, dropped, tried)
	}
}
