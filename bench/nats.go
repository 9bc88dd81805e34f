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
// one group, each on its own connection. In a fan-out shape the responders
// are plain subscribers, and requesters publish with a reply inbox and
// count the replies (gather.go).
type natsSystem struct{}

func (natsSystem) Name() string { return "NATS" }

const (
	natsSubject = "bench.rpc"
	natsQueue   = "responders"
	// natsMaxPayload lets a 64 MiB body (gather-large) and its protocol
	// line through. The server logs, when logging, that it is above the
	// recommended 8 MiB.
	natsMaxPayload = 64<<20 + 64<<10
	// natsMaxPending is each client's outbound buffer on the server: room
	// for a few of the largest messages.
	natsMaxPending = 256 << 20
)

// natsDeployment is a running server, or cluster of servers, with its
// connections.
type natsDeployment struct {
	servers    []*natsserver.Server
	responders []*nats.Conn
	requesters []*nats.Conn
	reqs       []requester

	mu      sync.Mutex
	respErr error // the first responder failure
}

// natsOptions are the options of every bench nats-server: loopback, a
// random port, and room for the largest bodies.
func natsOptions() *natsserver.Options {
	return &natsserver.Options{
		Host:       "127.0.0.1",
		Port:       natsserver.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: natsMaxPayload,
		MaxPending: natsMaxPending,
	}
}

// startNATSServer starts a nats-server with opts and waits until it takes
// connections.
func startNATSServer(ctx context.Context, opts *natsserver.Options) (*natsserver.Server, error) {
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: new server: %w", err)
	}
	srv.Start()
	wait := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		return nil, errors.New("nats: server not ready for connections")
	}
	return srv, nil
}

func (natsSystem) Start(ctx context.Context, sh shape) (deployment, error) {
	srv, err := startNATSServer(ctx, natsOptions())
	if err != nil {
		return nil, err
	}
	d := &natsDeployment{servers: []*natsserver.Server{srv}}
	if err := d.connect(sh, srv.ClientURL(), srv.ClientURL()); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// connect connects sh.Responders queue subscribers to respondURL and
// sh.Requesters requesters to requestURL.
func (d *natsDeployment) connect(sh shape, respondURL, requestURL string) error {
	for range sh.Responders {
		nc, err := nats.Connect(respondURL, nats.NoReconnect())
		if err != nil {
			return fmt.Errorf("nats: connect responder: %w", err)
		}
		d.responders = append(d.responders, nc)
		respond := func(m *nats.Msg) {
			if len(m.Data) != sh.RequestSize {
				d.fail(fmt.Errorf("nats: request of %d bytes, want %d", len(m.Data), sh.RequestSize))
			}
			if len(m.Header) != len(sh.Headers) {
				d.fail(fmt.Errorf("nats: request with %d header(s), want %d", len(m.Header), len(sh.Headers)))
			}
			if err := m.Respond(sh.Response); err != nil {
				d.fail(fmt.Errorf("nats: respond: %w", err))
			}
		}
		var sub *nats.Subscription
		if sh.Fanout {
			sub, err = nc.Subscribe(natsSubject, respond) // every subscriber gets every request
		} else {
			sub, err = nc.QueueSubscribe(natsSubject, natsQueue, respond)
		}
		if err != nil {
			return fmt.Errorf("nats: subscribe: %w", err)
		}
		// No client-side limit: flow is bounded by the closed-loop requesters.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return fmt.Errorf("nats: pending limits: %w", err)
		}
		// The subscription is registered at the server once Flush returns.
		if err := nc.Flush(); err != nil {
			return fmt.Errorf("nats: flush: %w", err)
		}
	}
	var header nats.Header
	if len(sh.Headers) > 0 {
		header = nats.Header{}
		for _, f := range sh.Headers {
			header.Add(f.key, f.value)
		}
	}
	for range sh.Requesters {
		nc, err := nats.Connect(requestURL, nats.NoReconnect())
		if err != nil {
			return fmt.Errorf("nats: connect requester: %w", err)
		}
		d.requesters = append(d.requesters, nc)
		if !sh.Fanout {
			d.reqs = append(d.reqs, natsRequester{nc: nc, header: header})
			continue
		}
		rq, err := newNATSGatherRequester(nc, sh.Responders)
		if err != nil {
			return err
		}
		d.reqs = append(d.reqs, rq)
	}
	return nil
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
	for _, srv := range d.servers {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.respErr
}

// natsRequester sends requests on one connection, with header on each
// when it has one.
type natsRequester struct {
	nc     *nats.Conn
	header nats.Header // shared, read-only
}

func (r natsRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	var m *nats.Msg
	var err error
	if r.header != nil {
		m, err = r.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: natsSubject, Data: body, Header: r.header})
	} else {
		m, err = r.nc.RequestWithContext(ctx, natsSubject, body)
	}
	if err != nil {
		return 0, fmt.Errorf("nats: request: %w", err)
	}
	return len(m.Data), nil
}
