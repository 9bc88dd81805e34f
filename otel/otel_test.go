package otel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	sbotel "github.com/socketbus/socketbus/otel"
	"github.com/socketbus/socketbus/server"
)

// TestTraceAcrossOneServer: a call made under a span runs in a client
// span, the handler in a server span, and both are in the caller's trace,
// the server span the client span's child; a span the handler starts from
// sbotel.Context is the server span's child.
func TestTraceAcrossOneServer(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	handled := make(handledSpans, 16)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(handled))
	defer tp.Shutdown(context.Background())

	_, addr := testpeer.StartServer(t, server.Config{})
	ch := socketbus.ChannelFromName("otel")
	caller := testpeer.DialClient(t, addr, ch, socketbus.WithInterceptor(sbotel.Interceptor(sbotel.WithTracerProvider(tp))))
	callee := testpeer.DialClient(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	handler := socketbus.HandlerFunc(func(req *socketbus.Request) {
		_, inner := tp.Tracer("handler").Start(sbotel.Context(req), "inner work")
		inner.End()
		if string(readAll(req)) == "fail" {
			req.Fail(&socketbus.RemoteError{Code: "not_found", Message: "nothing"})
			return
		}
		req.Respond(nil)
	})
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- callee.Serve(serveCtx, sbotel.Middleware(sbotel.WithTracerProvider(tp))(handler)) }()
	defer func() { stop(); <-served }()

	root, rootSpan := tp.Tracer("test").Start(ctx, "caller")
	if _, err := caller.Call(root, []byte("ok")); err != nil {
		t.Fatalf("Call: %v", err)
	}
	rootSpan.End()
	<-handled // the handler's span ends as its handler returns, maybe after the call
	spans := spansByName(t, rec, "caller", "socketbus call", "socketbus handle", "inner work")
	checkChain(t, spans["caller"], spans["socketbus call"], spans["socketbus handle"], spans["inner work"])
	if k := spans["socketbus call"].SpanKind(); k != trace.SpanKindClient {
		t.Fatalf("call span kind %v, want client", k)
	}
	if k := spans["socketbus handle"].SpanKind(); k != trace.SpanKindServer {
		t.Fatalf("handle span kind %v, want server", k)
	}

	// A failed call: the client span records the error and its code.
	_, err := caller.Call(ctx, []byte("fail"))
	<-handled
	var re *socketbus.RemoteError
	if !errors.As(err, &re) || re.Code != "not_found" {
		t.Fatalf("Call: got %v, want a RemoteError with code not_found", err)
	}
	var failed sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "socketbus call" && s.Status().Code.String() == "Error" {
			failed = s
		}
	}
	if failed == nil {
		t.Fatalf("no client span with status Error among %d spans", len(rec.Ended()))
	}
	found := false
	for _, a := range failed.Attributes() {
		if string(a.Key) == "socketbus.error_code" && a.Value.AsString() == "not_found" {
			found = true
		}
	}
	if !found {
		t.Fatalf("failed span's attributes %v lack socketbus.error_code=not_found", failed.Attributes())
	}
}

func readAll(req *socketbus.Request) []byte {
	b := make([]byte, 0, 16)
	buf := make([]byte, 16)
	for {
		n, err := req.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return b
		}
	}
}

// handledSpans is a span processor that tells when a "socketbus handle"
// span has ended (after the recorder has it: processors run in order).
type handledSpans chan struct{}

func (h handledSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (h handledSpans) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.Name() == "socketbus handle" {
		h <- struct{}{}
	}
}
func (h handledSpans) Shutdown(context.Context) error   { return nil }
func (h handledSpans) ForceFlush(context.Context) error { return nil }

// spansByName indexes the recorder's first ended span of each name.
func spansByName(t *testing.T, rec *tracetest.SpanRecorder, names ...string) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if _, ok := out[s.Name()]; !ok {
			out[s.Name()] = s
		}
	}
	for _, n := range names {
		if out[n] == nil {
			t.Fatalf("no span named %q among %d ended spans", n, len(rec.Ended()))
		}
	}
	return out
}

// checkChain checks that each span is the previous one's child, all in
// one trace.
func checkChain(t *testing.T, chain ...sdktrace.ReadOnlySpan) {
	t.Helper()
	for i := 1; i < len(chain); i++ {
		parent, child := chain[i-1], chain[i]
		if child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Fatalf("span %q is in trace %s, want %q's trace %s", child.Name(), child.SpanContext().TraceID(), parent.Name(), parent.SpanContext().TraceID())
		}
		if child.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Fatalf("span %q has parent %s, want %q (%s)", child.Name(), child.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
		}
	}
}
