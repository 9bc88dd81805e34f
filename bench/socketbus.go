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
	"github.com/socketbus/socketbus/server"
)

// socketbusSystem runs an in-process socketbus Server on a loopback
// listener; requesters and responders are Clients joined to one channel,
// using the public API only.
type socketbusSystem struct{}

func (socketbusSystem) Name() string { return "socketbus" }

func (socketbusSystem) Start(ctx context.Context, sh shape) (deployment, error) {
	srv, err := serveSocketbus(server.Config{})
	if err != nil {
		return nil, err
	}
	d := newSBDeployment()
	d.servers = append(d.servers, srv)
	if err := d.dial(ctx, srv.addr, srv.addr, sh); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// sbChannel names the channel of every socketbus client of the bench.
const sbChannel = "bench"

// sbServer is a socketbus Server serving a loopback listener.
type sbServer struct {
	srv    *server.Server
	addr   string
	served chan error // Serve's result
}

// serveSocketbus starts a Server with cfg on a 127.0.0.1:0 listener.
func serveSocketbus(cfg server.Config) (*sbServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("socketbus: listen: %w", err)
	}
	s := &sbServer{srv: server.New(cfg), addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// sbDeployment is one or more running servers with their clients: the
// responders dialled to one server's address, the requesters to one
// server's address (the same one for socketbusSystem).
type sbDeployment struct {
	servers []*sbServer // closed in this order

	responders []*socketbus.Client
	requesters []*socketbus.Client
	reqs       []requester

	rctx context.Context    // the responders' Serve calls run until stop
	stop context.CancelFunc // ends the responders' Serve calls
	wg   sync.WaitGroup     // the responders' Serve goroutines

	mu      sync.Mutex
	respErr error // the first responder failure
}

func newSBDeployment() *sbDeployment {
	d := &sbDeployment{}
	d.rctx, d.stop = context.WithCancel(context.Background())
	return d
}

// dial connects sh.Responders responders to responderAddr, each serving
// requests, and then sh.Requesters requesters to requesterAddr. On an
// error the caller closes d.
func (d *sbDeployment) dial(ctx context.Context, responderAddr, requesterAddr string, sh shape) error {
	channel := socketbus.ChannelFromName(sbChannel)
	for range sh.Responders {
		c, err := socketbus.Dial(ctx, responderAddr, channel)
		if err != nil {
			return fmt.Errorf("socketbus: dial responder: %w", err)
		}
		d.responders = append(d.responders, c)
		d.serve(c, sh)
	}
	opts := sbCallOptions(sh)
	for range sh.Requesters {
		c, err := socketbus.Dial(ctx, requesterAddr, channel)
		if err != nil {
			return fmt.Errorf("socketbus: dial requester: %w", err)
		}
		d.requesters = append(d.requesters, c)
		var rq requester = &sbRequester{c: c, opts: opts}
		if sh.Fanout {
			rq = &sbGatherRequester{c: c, members: sh.Responders}
		}
		d.reqs = append(d.reqs, rq)
	}
	return nil
}

// serve makes c a responder until d closes.
func (d *sbDeployment) serve(c *socketbus.Client, sh shape) {
	// A socketbus responder keeps requests coming the way a NATS
	// subscriber's pending buffer does: Serve waits in several Receive
	// calls on its one connection, so it never idles for a round trip
	// between requests. It runs with Serve's defaults.
	d.wg.Go(func() {
		err := c.Serve(d.rctx, socketbus.HandlerFunc(func(req *socketbus.Request) { d.respond(d.rctx, req, sh) }))
		if err != nil && d.rctx.Err() == nil {
			d.fail(fmt.Errorf("socketbus: serve: %w", err))
		}
	})
}

// sbCallOptions returns the options that send sh's headers, if any.
func sbCallOptions(sh shape) []socketbus.CallOption {
	if len(sh.Headers) == 0 {
		return nil
	}
	h := socketbus.Header{}
	for _, f := range sh.Headers {
		h.Add(f.key, f.value)
	}
	return []socketbus.CallOption{socketbus.WithHeader(h)}
}

// respond reads req's body and answers it with the shape's response.
func (d *sbDeployment) respond(ctx context.Context, req *socketbus.Request, sh shape) {
	var n counter
	_, err := io.Copy(&n, req.Body) // the body's WriteTo: no copy buffer
	if err == nil && int(n) != sh.RequestSize {
		err = fmt.Errorf("request of %d bytes, want %d", n, sh.RequestSize)
	}
	if err == nil && len(req.Header) != len(sh.Headers) {
		err = fmt.Errorf("request with %d header(s), want %d", len(req.Header), len(sh.Headers))
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

// Frames returns the frames the servers have read and written, all of
// them together.
func (d *sbDeployment) Frames() int64 {
	var n int64
	for _, s := range d.servers {
		st := s.srv.Stats()
		n += st.FramesIn + st.FramesOut
	}
	return n
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
	var errs []error
	for _, s := range d.servers {
		s.srv.Close()
		if err := <-s.served; !errors.Is(err, socketbus.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return errors.Join(append([]error{d.respErr}, errs...)...)
}

// sbRequester sends requests from one Client.
type sbRequester struct {
	c    *socketbus.Client
	opts []socketbus.CallOption // the request's headers, if any; shared
	body bytes.Reader
	resp counter
}

func (r *sbRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	r.body.Reset(body)
	r.resp = 0
	if err := r.c.Send(ctx, &r.body, &r.resp, r.opts...); err != nil {
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
