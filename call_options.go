package socketbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/socketbus/socketbus/internal/wire"
)

// CallOption configures one Call or Send: WithHeader gives the request
// headers, ResponseHeader collects the response's.
type CallOption func(*callConfig)

// callConfig is what a call's options say.
type callConfig struct {
	header     Header  // the request's headers
	borrowed   bool    // header is the caller's own (one WithHeader): not to be written
	respHeader *Header // where to store the response's, when asked
}

// WithHeader sends h as the request's headers (several WithHeader options
// add up). The receiver finds them in Request.Header. A receiver that
// speaks protocol version 1 or 2 gets the body alone.
func WithHeader(h Header) CallOption {
	return func(cfg *callConfig) {
		if cfg.header == nil {
			// The only WithHeader of most calls: h itself, read before
			// the call sends anything and never written.
			cfg.header, cfg.borrowed = h, true
			return
		}
		if cfg.borrowed {
			cfg.header, cfg.borrowed = cfg.header.Clone(), false
		}
		for k, vs := range h {
			cfg.header[k] = append(cfg.header[k], vs...)
		}
	}
}

// ResponseHeader stores the response's headers in *h: those the handler
// set with Request.ResponseHeader before Respond, or before Fail (then the
// call's *RemoteError comes with them). *h is an empty Header when the
// response had none, or when its responder speaks protocol version 1 or
// 2. Send stores them before it writes the response's first byte to its
// resp writer (so a writer may print them first; not when the client has
// interceptors) and again when it returns.
func ResponseHeader(h *Header) CallOption {
	return func(cfg *callConfig) { cfg.respHeader = h }
}

// callOptions applies opts; it returns nil when there are none, so that a
// call without options allocates nothing for them.
func callOptions(opts []CallOption) *callConfig {
	if len(opts) == 0 {
		return nil
	}
	cfg := new(callConfig)
	for _, o := range opts {
		if o != nil {
			o(cfg)
		}
	}
	return cfg
}

// CallInfo describes one Call or Send to the client's interceptors.
type CallInfo struct {
	// Channel is the client's channel.
	Channel ID
	// Header is the request's headers. An interceptor may change it
	// before it calls invoke (it is never nil); invoke sends what it
	// holds then.
	Header Header
	// ResponseHeader is the response's headers once invoke has returned
	// (empty when it had none; see ResponseHeader).
	ResponseHeader Header
}

// Invoker sends the call that info describes and returns its error: the
// last interceptor's invoke is the call itself.
type Invoker func(ctx context.Context, info *CallInfo) error

// Interceptor wraps every Call and Send of a Client (WithInterceptor):
// it may read and change info.Header, decorate ctx, and must call invoke
// at most once; what it returns is what the call returns. Tracing,
// metrics and authentication fit here; package
// github.com/socketbus/socketbus/otel has one for OpenTelemetry.
type Interceptor func(ctx context.Context, info *CallInfo, invoke Invoker) error

// WithInterceptor wraps every Call and Send of the client in the given
// interceptors, in order: the first is outermost. Several
// WithInterceptor options add up.
func WithInterceptor(interceptors ...Interceptor) DialOption {
	return func(o *dialOptions) { o.interceptors = append(o.interceptors, interceptors...) }
}

// intercept runs a call through the client's interceptors, then send.
func (c *Client) intercept(ctx context.Context, cfg *callConfig, send func(ctx context.Context, cfg *callConfig) error) error {
	info := &CallInfo{Channel: c.channel, Header: Header{}}
	if cfg != nil {
		info.Header = cfg.header.Clone()
		if info.Header == nil {
			info.Header = Header{}
		}
	}
	var chain func(i int) Invoker
	chain = func(i int) Invoker {
		if i == len(c.opts.interceptors) {
			return func(ctx context.Context, info *CallInfo) error {
				inner := &callConfig{header: info.Header}
				var resp Header
				inner.respHeader = &resp
				err := send(ctx, inner)
				info.ResponseHeader = resp
				return err
			}
		}
		next := chain(i + 1)
		return func(ctx context.Context, info *CallInfo) error {
			return c.opts.interceptors[i](ctx, info, next)
		}
	}
	err := chain(0)(ctx, info)
	if cfg != nil && cfg.respHeader != nil {
		*cfg.respHeader = info.ResponseHeader
		if *cfg.respHeader == nil {
			*cfg.respHeader = Header{}
		}
	}
	return err
}

// encodeHeaders returns the header block a request's start frame carries
// on a connection of protocol version v: nil before v3, wire.NoHeaders
// for no headers.
func encodeHeaders(v uint8, h Header) ([]byte, error) {
	if v < wire.Version3 {
		return nil, nil
	}
	if len(h) == 0 {
		return wire.NoHeaders, nil
	}
	b, err := wire.AppendHeaderBlock(nil, h)
	if err != nil {
		return nil, headersError(err)
	}
	return b, nil
}

// headersError is the error of headers that cannot be encoded.
func headersError(err error) error {
	var werr *wire.Error
	if errors.As(err, &werr) {
		return fmt.Errorf("socketbus: headers: %w", errorFromWire(werr))
	}
	return fmt.Errorf("socketbus: headers: %w", err)
}

// decodeHeaders reads the header block at the front of p: the headers
// (nil when there are none) and the bytes the block took.
func decodeHeaders(p []byte) (Header, int, error) {
	h, n, err := wire.ParseHeaderBlock(p, wire.MaxHeaderBlock)
	return Header(h), n, err
}
