package cluster_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	sbotel "github.com/socketbus/socketbus/otel"
	"github.com/socketbus/socketbus/server"
)

// TestCrossNodeTrueSenderV1: a v1 receiver on another node sees the
// sender's own Client.ID as the delivery's client ID (Request.From), and
// the request's body without its headers.
func TestCrossNodeTrueSenderV1(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	ch := socketbus.ChannelFromName("true-sender-v1")
	raw := testpeer.Join(t, b.node(1).addr, ch)
	raw.Poll(uuid.New())
	requester := dial(t, b.node(0), "true-sender-v1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	called := make(chan error, 1)
	go func() {
		_, err := requester.Call(ctx, []byte("hi"), socketbus.WithHeader(socketbus.Header{"Trace": {"abc"}}))
		called <- err
	}()
	req := raw.Receive()
	if req.From != requester.ID() || string(req.Body) != "hi" {
		t.Errorf("v1 delivery across nodes: from %v, body %q; want the sender's ID %v and hi", req.From, req.Body, requester.ID())
	}
	raw.Respond(req.ID, []byte("ok"))
	if err := <-called; err != nil {
		t.Fatalf("Call: %v", err)
	}
}

// TestCrossNodeTrueSenderAndHeaders: a request that crosses from one node
// to another shows its sender's own Client.ID as Request.From, carries its
// headers to the receiver, and brings the response's headers and a
// Fail's code and headers back.
func TestCrossNodeTrueSenderAndHeaders(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	for _, version := range []uint8{3} {
		ch := "true-sender-v" + string(rune('0'+version))
		responder := dial(t, b.node(1), ch)
		got := make(chan *socketbus.Request, 2)
		serve(t, responder, func(req *socketbus.Request) {
			got <- req
			req.ResponseHeader().Set("Echo-Trace", req.Header.Get("Trace"))
			if req.Header.Get("Fail") != "" {
				req.Fail(&socketbus.RemoteError{Code: "not_found", Message: "no such thing"})
				return
			}
			echo(req)
		})
		requester := dial(t, b.node(0), ch)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var rh socketbus.Header
		resp, err := requester.Call(ctx, []byte("hi"), socketbus.WithHeader(socketbus.Header{"Trace": {"abc"}}), socketbus.ResponseHeader(&rh))
		if err != nil || string(resp) != "echo:hi" {
			cancel()
			t.Fatalf("v%d: Call = %q, %v", version, resp, err)
		}
		req := <-got
		if req.From != requester.ID() {
			t.Errorf("v%d: Request.From on the other node = %v, want the sender's ID %v", version, req.From, requester.ID())
		}
		var wantReq, wantResp socketbus.Header
		wantResp = socketbus.Header{}
		if version == 3 {
			wantReq = socketbus.Header{"Trace": {"abc"}}
			wantResp = socketbus.Header{"Echo-Trace": {"abc"}}
		}
		if !reflect.DeepEqual(req.Header, wantReq) || !reflect.DeepEqual(rh, wantResp) {
			t.Errorf("v%d: headers across nodes: request %v, response %v; want %v and %v", version, req.Header, rh, wantReq, wantResp)
		}

		_, err = requester.Call(ctx, []byte("x"), socketbus.WithHeader(socketbus.Header{"Fail": {"1"}, "Trace": {"t2"}}), socketbus.ResponseHeader(&rh))
		cancel()
		<-got
		var re *socketbus.RemoteError
		if !errors.As(err, &re) || re.Message != "no such thing" {
			t.Fatalf("v%d: failed Call = %v, want a RemoteError", version, err)
		}
		wantCode := ""
		if version == 3 {
			wantCode, wantResp = "not_found", socketbus.Header{"Echo-Trace": {"t2"}}
		} else {
			wantResp = socketbus.Header{}
		}
		if re.Code != wantCode || !reflect.DeepEqual(rh, wantResp) {
			t.Errorf("v%d: Fail across nodes: code %q, headers %v; want %q and %v", version, re.Code, rh, wantCode, wantResp)
		}
	}
}

// TestCrossNodeHeaderBound: headers over the receiving node's bound are
// refused with too_large, and the link and connections stay up.
func TestCrossNodeHeaderBound(t *testing.T) {
	b := newTestBus(t, 2, server.Config{MaxHeaderBytes: 1024})
	responder := dial(t, b.node(1), "header-bound")
	serve(t, responder, echo)
	requester := dial(t, b.node(0), "header-bound")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := socketbus.Header{"Big": {strings.Repeat("x", 2000)}}
	if _, err := requester.Call(ctx, []byte("x"), socketbus.WithHeader(big)); !errors.Is(err, socketbus.ErrTooLarge) {
		t.Fatalf("Call with 2 KB of headers: %v, want ErrTooLarge", err)
	}
	if resp, err := requester.Call(ctx, []byte("x")); err != nil || string(resp) != "echo:x" {
		t.Fatalf("Call after: %q, %v", resp, err)
	}
}

// TestCrossNodeTrace: the caller's client span and the handler's server
// span, on another node, are in one trace, the server span the client
// span's child.
func TestCrossNodeTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	handled := make(chan struct{}, 1)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(endSignal{"socketbus handle", handled}))
	defer tp.Shutdown(context.Background())
	b := newTestBus(t, 2, server.Config{})
	responder := dial(t, b.node(1), "trace")
	serve(t, responder, func(req *socketbus.Request) {
		sbotel.Middleware(sbotel.WithTracerProvider(tp))(socketbus.HandlerFunc(echo)).ServeRequest(req)
	})
	requester := dial(t, b.node(0), "trace", socketbus.WithInterceptor(sbotel.Interceptor(sbotel.WithTracerProvider(tp))))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := requester.Call(ctx, []byte("x")); err != nil {
		t.Fatalf("Call: %v", err)
	}
	<-handled
	var client, srv sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "socketbus call":
			client = s
		case "socketbus handle":
			srv = s
		}
	}
	if client == nil || srv == nil {
		t.Fatalf("spans: client %v, server %v; want both", client, srv)
	}
	if srv.SpanContext().TraceID() != client.SpanContext().TraceID() || srv.Parent().SpanID() != client.SpanContext().SpanID() {
		t.Fatalf("server span trace %s parent %s; want the client span's trace %s and ID %s",
			srv.SpanContext().TraceID(), srv.Parent().SpanID(), client.SpanContext().TraceID(), client.SpanContext().SpanID())
	}
}

// endSignal is a span processor that signals when a span of one name ends.
type endSignal struct {
	name string
	c    chan struct{}
}

func (e endSignal) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (e endSignal) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.Name() == e.name {
		e.c <- struct{}{}
	}
}
func (e endSignal) Shutdown(context.Context) error   { return nil }
func (e endSignal) ForceFlush(context.Context) error { return nil }
