package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/socketbus/socketbus"
)

// scaleDialers is how many clients the scaling workloads dial at once: a
// pool of dialers, as a fleet of processes starting together would be,
// kept well under the listen backlog (4,096 on Linux by default).
const scaleDialers = 64

// scaleConnectTimeout bounds a NATS client's connection handshake in the
// scaling workloads. nats.go's default, 2 s, cut joins short on the
// shared machine while thousands of clients joined (a run failed with an
// i/o timeout); socketbus's Dial waits as long as its context lets it
// (the server's join timeout is 5 s).
const scaleConnectTimeout = 30 * time.Second

// A scaleSystem dials many clients to a server in a child process
// (childServer), using the public API only, as a new user would.
type scaleSystem interface {
	// Name is the system's name, as given to -serve-child.
	Name() string
	// Idle joins n clients to addr, client i to the channel (NATS: the
	// subject, in a queue group) channel(i), and leaves them idle until
	// the returned Closer closes them.
	Idle(ctx context.Context, addr string, n int, channel func(i int) int) (io.Closer, error)
	// Start joins l.responders responders to each of l.channels channels,
	// answering as the other workloads' responders do, then l.requesters
	// requesters spread over the channels (requester i on channel i mod
	// l.channels).
	Start(ctx context.Context, addr string, l layout, sh shape) (deployment, error)
}

// layout is how a scaling workload spreads its clients over channels.
type layout struct {
	channels   int
	responders int // per channel
	requesters int // in all
}

// sbScaleChannel is a scaling workload's channel c on socketbus.
func sbScaleChannel(c int) socketbus.ID { return socketbus.ChannelFromName(fmt.Sprintf("scale-%d", c)) }

// natsScaleSubject is a scaling workload's channel c on NATS.
func natsScaleSubject(c int) string { return fmt.Sprintf("bench.scale.%d", c) }

// forEach calls f(0) to f(n-1), scaleDialers at a time, and returns the
// first error; after one, the calls not yet started are not made.
func forEach(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, scaleDialers) {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// dialAll dials n clients with dial, scaleDialers at a time, and returns
// them in order, or closes those it dialled and returns the first error.
func dialAll[C any](ctx context.Context, n int, dial func(ctx context.Context, i int) (C, error), close func(C)) ([]C, error) {
	cs := make([]C, n)
	ok := make([]bool, n)
	err := forEach(ctx, n, func(ctx context.Context, i int) error {
		c, err := dial(ctx, i)
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		cs[i], ok[i] = c, true
		return nil
	})
	if err != nil {
		for i, c := range cs {
			if ok[i] {
				close(c)
			}
		}
		return nil, err
	}
	return cs, nil
}

// closers closes every client of a group.
type closers[C any] struct {
	clients []C
	close   func(C)
}

func (g closers[C]) Close() error {
	for _, c := range g.clients {
		g.close(c)
	}
	return nil
}

// socketbusScale is socketbus as a scaleSystem.
type socketbusScale struct{}

func (socketbusScale) Name() string { return "socketbus" }

func closeSB(c *socketbus.Client) { c.Close() }

func (socketbusScale) Idle(ctx context.Context, addr string, n int, channel func(int) int) (io.Closer, error) {
	cs, err := dialAll(ctx, n, func(ctx context.Context, i int) (*socketbus.Client, error) {
		return socketbus.Dial(ctx, addr, sbScaleChannel(channel(i)))
	}, closeSB)
	if err != nil {
		return nil, fmt.Errorf("socketbus: dial: %w", err)
	}
	return closers[*socketbus.Client]{clients: cs, close: closeSB}, nil
}

func (socketbusScale) Start(ctx context.Context, addr string, l layout, sh shape) (deployment, error) {
	d := newSBDeployment()
	responders, err := dialAll(ctx, l.channels*l.responders, func(ctx context.Context, i int) (*socketbus.Client, error) {
		return socketbus.Dial(ctx, addr, sbScaleChannel(i%l.channels))
	}, closeSB)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("socketbus: dial responder: %w", err)
	}
	d.responders = responders
	for _, c := range responders {
		d.serve(c, sh)
	}
	requesters, err := dialAll(ctx, l.requesters, func(ctx context.Context, i int) (*socketbus.Client, error) {
		return socketbus.Dial(ctx, addr, sbScaleChannel(i%l.channels))
	}, closeSB)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("socketbus: dial requester: %w", err)
	}
	d.requesters = requesters
	opts := sbCallOptions(sh)
	for _, c := range requesters {
		d.reqs = append(d.reqs, &sbRequester{c: c, opts: opts})
	}
	return d, nil
}

// natsScale is NATS as a scaleSystem: a client joined to a channel is a
// connection with a queue subscription to the channel's subject.
type natsScale struct{}

func (natsScale) Name() string { return "NATS" }

func closeNATS(nc *nats.Conn) { nc.Close() }

func (natsScale) Idle(ctx context.Context, addr string, n int, channel func(int) int) (io.Closer, error) {
	url := "nats://" + addr
	cs, err := dialAll(ctx, n, func(ctx context.Context, i int) (*nats.Conn, error) {
		nc, err := nats.Connect(url, nats.NoReconnect(), nats.Timeout(scaleConnectTimeout))
		if err != nil {
			return nil, fmt.Errorf("nats: connect: %w", err)
		}
		_, err = nc.QueueSubscribe(natsScaleSubject(channel(i)), natsQueue, func(*nats.Msg) {})
		if err == nil {
			err = nc.Flush() // the server has the subscription
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("nats: subscribe: %w", err)
		}
		return nc, nil
	}, closeNATS)
	if err != nil {
		return nil, err
	}
	return closers[*nats.Conn]{clients: cs, close: closeNATS}, nil
}

func (natsScale) Start(ctx context.Context, addr string, l layout, sh shape) (deployment, error) {
	url := "nats://" + addr
	d := &natsDeployment{}
	responders, err := dialAll(ctx, l.channels*l.responders, func(ctx context.Context, i int) (*nats.Conn, error) {
		nc, err := nats.Connect(url, nats.NoReconnect(), nats.Timeout(scaleConnectTimeout))
		if err != nil {
			return nil, fmt.Errorf("nats: connect responder: %w", err)
		}
		if err := d.serveSubject(nc, natsScaleSubject(i%l.channels), sh); err != nil {
			nc.Close()
			return nil, err
		}
		return nc, nil
	}, closeNATS)
	if err != nil {
		return nil, errors.Join(err, d.Close())
	}
	d.responders = responders
	requesters, err := dialAll(ctx, l.requesters, func(ctx context.Context, i int) (*nats.Conn, error) {
		nc, err := nats.Connect(url, nats.NoReconnect(), nats.Timeout(scaleConnectTimeout))
		if err != nil {
			return nil, fmt.Errorf("nats: connect requester: %w", err)
		}
		return nc, nil
	}, closeNATS)
	if err != nil {
		return nil, errors.Join(err, d.Close())
	}
	d.requesters = slices.Clip(requesters)
	header := natsHeader(sh)
	for i, nc := range requesters {
		subject := natsScaleSubject(i % l.channels)
		if len(sh.Response) <= nats.DefaultSubPendingBytesLimit {
			d.reqs = append(d.reqs, natsSubjectRequester{nc: nc, subject: subject, header: header})
			continue
		}
		r, err := newNATSInboxRequester(nc, subject, header)
		if err != nil {
			return nil, errors.Join(err, d.Close())
		}
		d.reqs = append(d.reqs, r)
	}
	return d, nil
}

// natsInboxRequester receives its responses on an inbox subscription of
// its own without nats.go's pending limits, for responses larger than
// their defaults: the shared inbox that Request uses drops a response
// over 64 MiB as a slow consumer, and the request then waits forever.
// This is what a user sending such bodies writes once they meet that.
type natsInboxRequester struct {
	nc      *nats.Conn
	subject string
	inbox   string
	sub     *nats.Subscription
	header  nats.Header // shared, read-only
}

func newNATSInboxRequester(nc *nats.Conn, subject string, header nats.Header) (*natsInboxRequester, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("nats: subscribe inbox: %w", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, fmt.Errorf("nats: pending limits: %w", err)
	}
	return &natsInboxRequester{nc: nc, subject: subject, inbox: inbox, sub: sub, header: header}, nil
}

func (r *natsInboxRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	if err := r.nc.PublishMsg(&nats.Msg{Subject: r.subject, Reply: r.inbox, Data: body, Header: r.header}); err != nil {
		return 0, fmt.Errorf("nats: publish: %w", err)
	}
	m, err := r.sub.NextMsgWithContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("nats: response: %w", err)
	}
	return len(m.Data), nil
}

// serveSubject makes nc a responder on subject, in the responders' queue
// group, answering every request with sh.Response as natsSystem's
// responders do, and returns once the server has the subscription.
func (d *natsDeployment) serveSubject(nc *nats.Conn, subject string, sh shape) error {
	sub, err := nc.QueueSubscribe(subject, natsQueue, func(m *nats.Msg) {
		if len(m.Data) != sh.RequestSize {
			d.fail(fmt.Errorf("nats: request of %d bytes, want %d", len(m.Data), sh.RequestSize))
		}
		if len(m.Header) != len(sh.Headers) {
			d.fail(fmt.Errorf("nats: request with %d header(s), want %d", len(m.Header), len(sh.Headers)))
		}
		if err := m.Respond(sh.Response); err != nil {
			d.fail(fmt.Errorf("nats: respond: %w", err))
		}
	})
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
	return nil
}

// natsHeader returns sh's headers as a nats.Header, or nil when it has
// none.
func natsHeader(sh shape) nats.Header {
	if len(sh.Headers) == 0 {
		return nil
	}
	header := nats.Header{}
	for _, f := range sh.Headers {
		header.Add(f.key, f.value)
	}
	return header
}

// natsSubjectRequester sends requests to subject on one connection with
// nats.go's Request, with header on each when it has one.
type natsSubjectRequester struct {
	nc      *nats.Conn
	subject string
	header  nats.Header // shared, read-only
}

func (r natsSubjectRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	var m *nats.Msg
	var err error
	if r.header != nil {
		m, err = r.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: r.subject, Data: body, Header: r.header})
	} else {
		m, err = r.nc.RequestWithContext(ctx, r.subject, body)
	}
	if err != nil {
		return 0, fmt.Errorf("nats: request: %w", err)
	}
	return len(m.Data), nil
}
