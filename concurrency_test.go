package socketbus_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// TestClientMultipleConcurrent is the seed's failing test, made hard: 64
// clients on one channel, each sending and receiving at the same time,
// bodies of random sizes up to 256 KiB, every response checked byte for
// byte against a transform of its own request.
func TestClientMultipleConcurrent(t *testing.T) {
	const (
		clients          = 64
		sendsPerClient   = 3
		receivesInFlight = 2 // Receive loops per client
		maxBody          = 256 << 10
	)
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("multiple-concurrent")
	cs := make([]*socketbus.Client, clients)
	members := make(map[socketbus.ID]bool)
	for i := range cs {
		cs[i] = dial(t, addr, ch)
		members[cs[i].ID()] = true
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recvCtx, stopReceiving := context.WithCancel(ctx)
	defer stopReceiving()

	errs := make(chan error, clients*(sendsPerClient+receivesInFlight))
	var received atomic.Int64
	var receivers, senders sync.WaitGroup
	for _, c := range cs {
		for j := 0; j < receivesInFlight; j++ {
			receivers.Add(1)
			go func() {
				defer receivers.Done()
				for {
					req, err := c.Receive(recvCtx)
					if err != nil {
						if recvCtx.Err() == nil {
							errs <- fmt.Errorf("client %v: Receive: %w", c.ID(), err)
						}
						return
					}
					if req.From == c.ID() {
						errs <- fmt.Errorf("client %v received its own request %v", c.ID(), req.ID)
					}
					if !members[req.From] {
						errs <- fmt.Errorf("client %v received request %v from %v, not a client of this test", c.ID(), req.ID, req.From)
					}
					body, err := io.ReadAll(req.Body)
					if err != nil {
						errs <- fmt.Errorf("client %v: reading request %v: %w", c.ID(), req.ID, err)
						return
					}
					if err := req.Respond(bytes.NewReader(transform(req.From, body))); err != nil {
						errs <- fmt.Errorf("client %v: Respond to %v: %w", c.ID(), req.ID, err)
						return
					}
					received.Add(1)
				}
			}()
		}
		for j := 0; j < sendsPerClient; j++ {
			senders.Add(1)
			go func() {
				defer senders.Done()
				seed := rand.Uint64()
				r := rand.New(rand.NewPCG(seed, 0))
				body := randomBytes(r, r.IntN(maxBody+1))
				var resp bytes.Buffer
				if err := c.Send(ctx, bytes.NewReader(body), &resp); err != nil {
					errs <- fmt.Errorf("client %v: Send of %d bytes (seed %d): %w", c.ID(), len(body), seed, err)
					return
				}
				if want := transform(c.ID(), body); !bytes.Equal(resp.Bytes(), want) {
					errs <- fmt.Errorf("client %v: response of %d bytes differs at byte %d from the %d expected (seed %d)",
						c.ID(), resp.Len(), firstDiff(resp.Bytes(), want), len(want), seed)
				}
			}()
		}
	}
	senders.Wait()
	stopReceiving()
	receivers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := received.Load(), int64(clients*sendsPerClient); got != want {
		t.Errorf("requests answered: got %d, want %d", got, want)
	}
}

// TestChannelIsolation runs two channels side by side: no request crosses
// from one to the other, and every response comes from the sender's own
// channel.
func TestChannelIsolation(t *testing.T) {
	const (
		perChannel = 3
		sends      = 10
	)
	_, addr := startServer(t, server.Config{})
	names := []string{"left", "right"}
	clients := make(map[string][]*socketbus.Client)
	ids := make(map[string]map[socketbus.ID]bool)
	for _, name := range names {
		ids[name] = make(map[socketbus.ID]bool)
		for i := 0; i < perChannel; i++ {
			c := dial(t, addr, socketbus.ChannelFromName(name))
			clients[name] = append(clients[name], c)
			ids[name][c.ID()] = true
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recvCtx, stopReceiving := context.WithCancel(ctx)
	defer stopReceiving()
	errs := make(chan error, 2*perChannel*(sends+1))
	var receivers, senders sync.WaitGroup
	for _, name := range names {
		for _, c := range clients[name] {
			receivers.Add(1)
			go func() {
				defer receivers.Done()
				for {
					req, err := c.Receive(recvCtx)
					if err != nil {
						if recvCtx.Err() == nil {
							errs <- fmt.Errorf("%s: Receive: %w", name, err)
						}
						return
					}
					body, err := io.ReadAll(req.Body)
					if err != nil {
						errs <- fmt.Errorf("%s: reading body: %w", name, err)
						return
					}
					if !ids[name][req.From] {
						errs <- fmt.Errorf("a client on %q received a request from %v, not on its channel (body %q)", name, req.From, body)
					}
					if !strings.HasPrefix(string(body), name+"|") {
						errs <- fmt.Errorf("a client on %q received body %q, want one sent on %q", name, body, name)
					}
					if err := req.Respond(strings.NewReader(name + " answers " + string(body))); err != nil {
						errs <- fmt.Errorf("%s: Respond: %w", name, err)
						return
					}
				}
			}()
			for i := 0; i < sends; i++ {
				senders.Add(1)
				go func() {
					defer senders.Done()
					body := fmt.Sprintf("%s|%v|%d", name, c.ID(), i)
					got, err := roundTrip(ctx, c, []byte(body))
					if err != nil {
						errs <- fmt.Errorf("%s: Send: %w", name, err)
						return
					}
					if want := name + " answers " + body; string(got) != want {
						errs <- fmt.Errorf("%s: response %q, want %q", name, got, want)
					}
				}()
			}
		}
	}
	senders.Wait()
	stopReceiving()
	receivers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
