package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsSystem runs an embedded nats-server on a random loopback port.
// Requesters use nats.go request/reply; responders are queue subscribers in
// one group, each on its own connection.
type natsSystem struct{}

func (natsSystem) Name() string { return "NATS" }

const (
	natsSubject = "bench.rpc"
	natsQueue   = "responders"
	// natsMaxPayload lets a 16 MiB body and its protocol line through.
	natsMaxPayload = 16<<20 + 64<<10
	// natsMaxPending is each client's outbound buffer on the server: room
	// for a few of the largest messages.
	natsMaxPending = 256 << 20
)

// natsDeployment is a running server with its connections.
type natsDeployment struct {
	srv        *natsserver.Server
	responders []*nats.Conn
	requesters []*nats.Conn
	reqs       []requester

	mu      sync.Mutex
	respErr error // the first responder failure
}

func (natsSystem) Start(ctx context.Context, sh shape) (deployment, error) {
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host:       "127.0.0.1",
		Port:       natsserver.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: natsMaxPayload,
		MaxPending: natsMaxPending,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: new server: %w", err)
	}
	srv.Start()
	d := &natsDeployment{srv: srv}
	wait := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		d.Close()
		return nil, errors.New("nats: server not ready for connections")
	}
	url := srv.ClientURL()

	for range sh.Responders {
		nc, err := nats.Connect(url, nats.NoReconnect())
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("nats: connect responder: %w", err)
		}
		d.responders = append(d.responders, nc)
		sub, err := nc.QueueSubscribe(natsSubject, natsQueue, func(m *nats.Msg) {
			if len(m.Data) != sh.RequestSize {
				d.fail(fmt.Errorf("nats: request of %d bytes, want %d", len(m.Data), sh.RequestSize))
			}
			if err := m.Respond(sh.Response); err != nil {
				d.fail(fmt.Errorf("nats: respond: %w", err))
			}
		})
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("nats: subscribe: %w", err)
		}
		// No client-side limit: flow is bounded by the closed-loop requesters.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			d.Close()
			return nil, fmt.Errorf("nats: pending limits: %w", err)
		}
		// The subscription is registered at the server once Flush returns.
		if err := nc.Flush(); err != nil {
			d.Close()
			return nil, fmt.Errorf("nats: flush: %w", err)
		}
	}
	for range sh.Requesters {
		nc, err := nats.Connect(url, nats.NoReconnect())
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("nats: connect requester: %w", err)
		}
		d.requesters = append(d.requesters, nc)
		d.reqs = append(d.reqs, natsRequester{nc})
	}
	return d, nil
}

func (d *natsDeployment) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.respErr == nil {
		d.respErr = err
	}
}

func (d *natsDeployment) Requesters() []requester { return d.reqs }

func (d *natsDeployment) Close() error {
	for _, nc := range d.requesters {
		nc.Close()
	}
	for _, nc := range d.responders {
		nc.Close()
	}
	d.srv.Shutdown()
	d.srv.WaitForShutdown()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.respErr
}

// natsRequester sends requests on one connection.
type natsRequester struct{ nc *nats.Conn }

func (r natsRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	m, err := r.nc.RequestWithContext(ctx, natsSubject, body)
	if err != nil {
		return 0, fmt.Errorf("nats: request: %w", err)
	}
	return len(m.Data), nil
}
