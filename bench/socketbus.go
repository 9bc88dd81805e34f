package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/socketbus/socketbus"
)

// socketbusSystem runs an in-process socketbus Server on a loopback
// listener; requesters and responders are Clients joined to one channel,
// using the public API only.
type socketbusSystem struct{}

func (socketbusSystem) Name() string { return "socketbus" }

// sbDeployment is a running server with its clients.
type sbDeployment struct {
	srv    *socketbus.Server
	served chan error // Serve's result

	responders []*socketbus.Client
	requesters []*socketbus.Client
	reqs       []requester

	stop context.CancelFunc // ends the responders' Serve calls
	wg   sync.WaitGroup     // the responders' Serve goroutines

	mu      sync.Mutex
	respErr error // the first responder failure
}

func (socketbusSystem) Start(ctx context.Context, sh shape) (deployment, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("socketbus: listen: %w", err)
	}
	d := &sbDeployment{srv: socketbus.NewServer(socketbus.ServerConfig{}), served: make(chan error, 1)}
	go func() { d.served <- d.srv.Serve(ln) }()
	addr := ln.Addr().String()
	channel := socketbus.ChannelFromName("bench")

	rctx, stop := context.WithCancel(context.Background())
	d.stop = stop
	for range sh.Responders {
		c, err := socketbus.Dial(ctx, addr, channel)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("socketbus: dial responder: %w", err)
		}
		d.responders = append(d.responders, c)
		// A socketbus responder keeps requests coming the way a NATS
		// subscriber's pending buffer does: Serve waits in several Receive
		// calls on its one connection, so it never idles for a round trip
		// between requests. It runs with Serve's defaults.
		d.wg.Go(func() {
			err := c.Serve(rctx, socketbus.HandlerFunc(func(req *socketbus.Request) { d.respond(rctx, req, sh) }))
			if err != nil && rctx.Err() == nil {
				d.fail(fmt.Errorf("socketbus: serve: %w", err))
			}
		})
	}
	for range sh.Requesters {
		c, err := socketbus.Dial(ctx, addr, channel)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("socketbus: dial requester: %w", err)
		}
		d.requesters = append(d.requesters, c)
		d.reqs = append(d.reqs, &sbRequester{c: c})
	}
	return d, nil
}

// respond reads req's body and answers it with the shape's response.
func (d *sbDeployment) respond(ctx context.Context, req *socketbus.Request, sh shape) {
	var n counter
	_, err := io.Copy(&n, req.Body) // the body's WriteTo: no copy buffer
	if err == nil && int(n) != sh.RequestSize {
		err = fmt.Errorf("request of %d bytes, want %d", n, sh.RequestSize)
	}
	if err != nil {
		d.fail(fmt.Errorf("socketbus: reading request: %w", err))
		_ = req.Fail(err)
		return
	}
	if err := req.Respond(bytes.NewReader(sh.Response)); err != nil && ctx.Err() == nil {
		d.fail(fmt.Errorf("socketbus: respond: %w", err))
	}
}

func (d *sbDeployment) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.respErr == nil {
		d.respErr = err
	}
}

func (d *sbDeployment) Requesters() []requester { return d.reqs }

// Frames returns the frames the server has read and written.
func (d *sbDeployment) Frames() int64 {
	st := d.srv.Stats()
	return st.FramesIn + st.FramesOut
}

func (d *sbDeployment) Close() error {
	d.stop()
	for _, c := range d.requesters {
		c.Close()
	}
	d.wg.Wait()
	for _, c := range d.responders {
		c.Close()
	}
	d.srv.Close()
	err := <-d.served
	if errors.Is(err, socketbus.ErrServerClosed) {
		err = nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return errors.Join(d.respErr, err)
}

// sbRequester sends requests from one Client.
type sbRequester struct {
	c    *socketbus.Client
	body bytes.Reader
	resp counter
}

func (r *sbRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	r.body.Reset(body)
	r.resp = 0
	if err := r.c.Send(ctx, &r.body, &r.resp); err != nil {
		return 0, fmt.Errorf("socketbus: send: %w", err)
	}
	return int(r.resp), nil
}

// counter is an io.Writer that counts what it is given and keeps none of it.
type counter int64

func (c *counter) Write(p []byte) (int, error) {
	*c += counter(len(p))
	return len(p), nil
}
