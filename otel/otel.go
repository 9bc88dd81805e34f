// Package otel carries OpenTelemetry trace context across socketbus: W3C
// traceparent and tracestate (or whatever propagator it is given) travel
// in the request's headers (protocol v3).
//
// On the calling side, Interceptor is a socketbus.Interceptor: every Call
// and Send of a client dialled with socketbus.WithInterceptor(otel.Interceptor())
// runs in a client span, a child of the span in its context, and the
// span's context goes out in the request's headers. On the receiving side,
// Middleware wraps a Handler: it reads the caller's span context from the
// request's headers and runs the handler in a server span, the caller's
// child, which the handler reaches through Context(req).
//
//	client, _ := socketbus.Dial(ctx, addr, ch, socketbus.WithInterceptor(otel.Interceptor()))
//	go server.Serve(ctx, otel.Middleware()(handler))
//
// This package is the only part of socketbus that links OpenTelemetry:
// the root package and package server do not.
package otel

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/socketbus/socketbus"
)

// ScopeName is the instrumentation scope of the spans this package makes.
const ScopeName = "github.com/socketbus/socketbus/otel"

// Option configures Interceptor and Middleware.
type Option func(*config)

type config struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
}

// WithTracerProvider makes spans with tp instead of the global provider
// (otel.GetTracerProvider at the time Interceptor or Middleware is
// called).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.provider = tp }
}

// WithPropagator carries span context with p instead of W3C trace
// context (propagation.TraceContext).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

func newConfig(opts []Option) config {
	c := config{provider: otel.GetTracerProvider(), propagator: propagation.TraceContext{}}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// headerCarrier lets a propagator read and write a socketbus.Header.
type headerCarrier socketbus.Header

func (h headerCarrier) Get(key string) string { return socketbus.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { socketbus.Header(h).Set(key, value) }
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Interceptor returns a client interceptor that runs each call in a
// client span named "socketbus call", the child of the span in the
// call's context, and injects the span's context into the request's
// headers. A call that fails sets the span's status to Error; a
// *socketbus.RemoteError's Code is recorded as the attribute
// socketbus.error_code.
func Interceptor(opts ...Option) socketbus.Interceptor {
	c := newConfig(opts)
	tracer := c.provider.Tracer(ScopeName)
	return func(ctx context.Context, info *socketbus.CallInfo, invoke socketbus.Invoker) error {
		ctx, span := tracer.Start(ctx, "socketbus call",
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("messaging.system", "socketbus"),
				attribute.String("messaging.destination.name", info.Channel.String())))
		defer span.End()
		c.propagator.Inject(ctx, headerCarrier(info.Header))
		err := invoke(ctx, info)
		if err != nil {
			var re *socketbus.RemoteError
			if errors.As(err, &re) && re.Code != "" {
				span.SetAttributes(attribute.String("socketbus.error_code", re.Code))
			}
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return err
	}
}

// spans holds each request's server span while its handler runs.
var spans sync.Map // *socketbus.Request -> trace.Span

// Middleware returns Handler middleware that runs each request's handler
// in a server span named "socketbus handle", the child of the span whose
// context the request's headers carry (a root span when they carry
// none). The handler reaches the span through Context(req).
func Middleware(opts ...Option) func(socketbus.Handler) socketbus.Handler {
	c := newConfig(opts)
	tracer := c.provider.Tracer(ScopeName)
	return func(next socketbus.Handler) socketbus.Handler {
		return socketbus.HandlerFunc(func(req *socketbus.Request) {
			parent := c.propagator.Extract(context.Background(), headerCarrier(req.Header))
			_, span := tracer.Start(parent, "socketbus handle",
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("messaging.system", "socketbus"),
					attribute.String("socketbus.request_id", req.ID.String()),
					attribute.String("socketbus.from", req.From.String())))
			defer span.End()
			spans.Store(req, span)
			defer spans.Delete(req)
			next.ServeRequest(req)
		})
	}
}

// Context returns req.Context() carrying the server span Middleware runs
// req's handler in, for the handler's own spans and calls (a call made
// with it by a client with Interceptor is the server span's child). For a
// request Middleware does not handle, it is req.Context().
func Context(req *socketbus.Request) context.Context {
	if span, ok := spans.Load(req); ok {
		return trace.ContextWithSpan(req.Context(), span.(trace.Span))
	}
	return req.Context()
}
