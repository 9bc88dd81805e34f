package socketbus_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// echoHeaders answers one request: the response carries the request's
// headers back with "Echo-" before each key, plus Handled: yes, and the
// body transformed by fn.
func echoHeaders(ctx context.Context, c *socketbus.Client, fn func(io.Reader) io.Reader) (*socketbus.Request, error) {
	req, err := c.Receive(ctx)
	if err != nil {
		return nil, err
	}
	rh := req.ResponseHeader()
	for k, vs := range req.Header {
		for _, v := range vs {
			rh.Add("Echo-"+k, v)
		}
	}
	rh.Set("handled", "yes")
	return req, req.Respond(fn(req.Body))
}

func TestHeadersBothWaysCall(t *testing.T) {
	a, b := twoClients(t, "headers-call")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan *socketbus.Request, 1)
	go func() {
		req, err := echoHeaders(ctx, b, func(r io.Reader) io.Reader {
			body, _ := io.ReadAll(r)
			return bytes.NewReader(bytes.ToUpper(body))
		})
		if err != nil {
			t.Errorf("receiver: %v", err)
		}
		got <- req
	}()
	h := socketbus.Header{}
	h.Set("trace-id", "4bf92f3577b34da6")
	h.Add("X-Tag", "one")
	h.Add("x-tag", "two")
	var rh socketbus.Header
	resp, err := a.Call(ctx, []byte("hello"), socketbus.WithHeader(h), socketbus.ResponseHeader(&rh))
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if string(resp) != "HELLO" {
		t.Fatalf("response %q, want HELLO", resp)
	}
	req := <-got
	want := socketbus.Header{"Trace-Id": {"4bf92f3577b34da6"}, "X-Tag": {"one", "two"}}
	if !reflect.DeepEqual(req.Header, want) {
		t.Fatalf("receiver's Request.Header = %v, want %v", req.Header, want)
	}
	wantResp := socketbus.Header{"Echo-Trace-Id": {"4bf92f3577b34da6"}, "Echo-X-Tag": {"one", "two"}, "Handled": {"yes"}}
	if !reflect.DeepEqual(rh, wantResp) {
		t.Fatalf("response header = %v, want %v", rh, wantResp)
	}
	if req.From != a.ID() {
		t.Fatalf("Request.From = %v, want the sender's ID %v", req.From, a.ID())
	}
}

// TestHeadersBothWaysStreamed sends a 5 MiB body and gets a 5 MiB
// response, both streamed over many frames, with headers both ways.
func TestHeadersBothWaysStreamed(t *testing.T) {
	a, b := twoClients(t, "headers-stream")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const size = 5 << 20
	type result struct {
		req *socketbus.Request
		sum [32]byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		var sum [32]byte
		req, err := echoHeaders(ctx, b, func(r io.Reader) io.Reader {
			h := sha256.New()
			io.Copy(h, r)
			copy(sum[:], h.Sum(nil))
			return testpeer.NewPattern(2, size)
		})
		got <- result{req, sum, err}
	}()
	h := socketbus.Header{"Content-Type": {"application/octet-stream"}, "X-Big": {strings.Repeat("v", 4000)}}
	var rh socketbus.Header
	respSum := sha256.New()
	if err := a.Send(ctx, testpeer.NewPattern(1, size), respSum, socketbus.WithHeader(h), socketbus.ResponseHeader(&rh)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("receiver: %v", r.err)
	}
	if !reflect.DeepEqual(r.req.Header, h) {
		t.Fatalf("receiver's Request.Header = %.80v, want %.80v", r.req.Header, h)
	}
	wantSum := sha256.New()
	io.Copy(wantSum, testpeer.NewPattern(1, size))
	if !bytes.Equal(r.sum[:], wantSum.Sum(nil)) {
		t.Fatalf("the request body the receiver read differs from the one sent")
	}
	wantSum.Reset()
	io.Copy(wantSum, testpeer.NewPattern(2, size))
	if !bytes.Equal(respSum.Sum(nil), wantSum.Sum(nil)) {
		t.Fatalf("the response body differs from the one sent")
	}
	if rh.Get("Echo-Content-Type") != "application/octet-stream" || rh.Get("Handled") != "yes" || len(rh.Get("Echo-X-Big")) != 4000 {
		t.Fatalf("response header = %.120v, want the request's echoed and Handled: yes", rh)
	}
}

func TestRemoteErrorCodeAndHeaders(t *testing.T) {
	a, b := twoClients(t, "headers-codes")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for _, fail := range []error{
			&socketbus.RemoteError{Code: "not_found", Message: "no such order"},
			fmt.Errorf("looking up: %w", &socketbus.RemoteError{Code: "retry_later", Message: "busy"}),
			errors.New("plain"),
		} {
			req, err := b.Receive(ctx)
			if err != nil {
				t.Errorf("Receive: %v", err)
				return
			}
			req.ResponseHeader().Set("Retry-After", "5")
			if err := req.Fail(fail); err != nil {
				t.Errorf("Fail: %v", err)
			}
		}
	}()
	for _, want := range []socketbus.RemoteError{
		{Code: "not_found", Message: "no such order"},
		{Code: "retry_later", Message: "looking up: socketbus: remote error retry_later: busy"},
		{Code: "", Message: "plain"},
	} {
		var rh socketbus.Header
		_, err := a.Call(ctx, []byte("x"), socketbus.ResponseHeader(&rh))
		var re *socketbus.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("Call: got %v, want a *RemoteError", err)
		}
		if *re != want {
			t.Fatalf("Call: got %#v, want %#v", *re, want)
		}
		if rh.Get("Retry-After") != "5" {
			t.Fatalf("the failure's response header = %v, want Retry-After: 5", rh)
		}
	}
}

// TestHeaderBound: a header block over the server's MaxHeaderBytes fails
// that request alone with ErrTooLarge, both ways; the connections stay up.
func TestHeaderBound(t *testing.T) {
	_, addr := startServer(t, server.Config{MaxHeaderBytes: 1024})
	ch := socketbus.ChannelFromName("headers-bound")
	a, b := dial(t, addr, ch), dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := socketbus.Header{"X-Big": {strings.Repeat("b", 1100)}}
	if _, err := a.Call(ctx, []byte("x"), socketbus.WithHeader(big)); !errors.Is(err, socketbus.ErrTooLarge) {
		t.Fatalf("Call with 1.1 KiB of headers: got %v, want ErrTooLarge", err)
	}
	// A response whose headers are over the bound: the requester gets
	// too_large, the responder's Respond returns; then a normal call.
	done := make(chan error, 1)
	go func() {
		req, err := b.Receive(ctx)
		if err != nil {
			done <- err
			return
		}
		req.ResponseHeader().Set("X-Big", strings.Repeat("r", 1100))
		req.Respond(strings.NewReader("too much"))
		done <- serveN(ctx, b, 1, upper)
	}()
	if _, err := a.Call(ctx, []byte("x")); !errors.Is(err, socketbus.ErrTooLarge) {
		t.Fatalf("Call answered with 1.1 KiB of headers: got %v, want ErrTooLarge", err)
	}
	resp, err := a.Call(ctx, []byte("after"), socketbus.WithHeader(socketbus.Header{"Small": {"ok"}}))
	if err != nil || string(resp) != "AFTER" {
		t.Fatalf("Call after the refusals: %q, %v; want AFTER", resp, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	if a.Err() != nil || b.Err() != nil {
		t.Fatalf("a connection ended: %v, %v", a.Err(), b.Err())
	}
}

// TestHeadersMixedVersions: a v1 or v2 receiver gets a request's body
// without its headers, and a v3 requester answered by it gets an empty
// response Header and an empty Code; a v1 or v2 requester's request
// reaches a v3 receiver with no headers, and its answer without them.
func TestHeadersMixedVersions(t *testing.T) {
	for _, old := range []uint8{1, 2} {
		t.Run(fmt.Sprintf("v3 requester, v%d responder", old), func(t *testing.T) {
			_, addr := startServer(t, server.Config{})
			ch := socketbus.ChannelFromName("headers-mixed")
			a := dial(t, addr, ch)
			b := dial(t, addr, ch, socketbus.WithProtocolVersion(old))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go func() {
				req, err := echoHeaders(ctx, b, func(r io.Reader) io.Reader {
					body, _ := io.ReadAll(r)
					return bytes.NewReader(bytes.ToUpper(body))
				})
				if err == nil && req.Header != nil {
					t.Errorf("a v%d receiver got headers %v", old, req.Header)
				}
				req, err = b.Receive(ctx)
				if err == nil {
					req.ResponseHeader().Set("X", "y")
					req.Fail(&socketbus.RemoteError{Code: "not_found", Message: "gone"})
				}
			}()
			rh := socketbus.Header{"Stale": {"value"}}
			resp, err := a.Call(ctx, []byte("body"), socketbus.WithHeader(socketbus.Header{"K": {"v"}}), socketbus.ResponseHeader(&rh))
			if err != nil || string(resp) != "BODY" {
				t.Fatalf("Call: %q, %v; want BODY", resp, err)
			}
			if rh == nil || len(rh) != 0 {
				t.Fatalf("response header from a v%d responder = %v, want an empty Header", old, rh)
			}
			_, err = a.Call(ctx, []byte("x"), socketbus.WithHeader(socketbus.Header{"K": {"v"}}), socketbus.ResponseHeader(&rh))
			var re *socketbus.RemoteError
			if !errors.As(err, &re) || re.Code != "" || re.Message != "gone" || len(rh) != 0 {
				t.Fatalf("Fail from a v%d responder: got %v (%#v), header %v; want a RemoteError without Code or headers", old, err, re, rh)
			}
		})
		t.Run(fmt.Sprintf("v%d requester, v3 responder", old), func(t *testing.T) {
			_, addr := startServer(t, server.Config{})
			ch := socketbus.ChannelFromName("headers-mixed")
			a := dial(t, addr, ch, socketbus.WithProtocolVersion(old))
			b := dial(t, addr, ch)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go func() {
				req, err := echoHeaders(ctx, b, func(r io.Reader) io.Reader {
					body, _ := io.ReadAll(r)
					return bytes.NewReader(bytes.ToUpper(body))
				})
				if err == nil && req.Header != nil {
					t.Errorf("a request from a v%d sender has headers %v", old, req.Header)
				}
				req, err = b.Receive(ctx)
				if err == nil {
					req.ResponseHeader().Set("X", "y")
					req.Fail(&socketbus.RemoteError{Code: "not_found", Message: "gone"})
				}
			}()
			resp, err := a.Call(ctx, []byte("body"))
			if err != nil || string(resp) != "BODY" {
				t.Fatalf("Call: %q, %v; want BODY", resp, err)
			}
			_, err = a.Call(ctx, []byte("x"))
			var re *socketbus.RemoteError
			if !errors.As(err, &re) || re.Code != "" || re.Message != "gone" {
				t.Fatalf("Fail to a v%d requester: got %v; want a RemoteError without Code", old, err)
			}
		})
	}
}

// TestHeadersNeverMix runs 200 concurrent calls, each with headers of its
// own, through four receivers: every response carries its own request's
// headers back, and nothing of another's.
func TestHeadersNeverMix(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("headers-mix")
	a := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const calls = 200
	for range 4 {
		b := dial(t, addr, ch)
		go b.Serve(ctx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			body, _ := io.ReadAll(req.Body)
			rh := req.ResponseHeader()
			rh["Echo-Id"] = req.Header.Values("Call-Id")
			rh.Set("Echo-Body", string(body))
			req.Respond(bytes.NewReader(body))
		}))
	}
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint(i)
			h := socketbus.Header{}
			h.Add("Call-Id", id)
			h.Add("Call-Id", "again-"+id)
			var rh socketbus.Header
			resp, err := a.Call(ctx, []byte("body-"+id), socketbus.WithHeader(h), socketbus.ResponseHeader(&rh))
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			want := socketbus.Header{"Echo-Id": {id, "again-" + id}, "Echo-Body": {"body-" + id}}
			if string(resp) != "body-"+id || !reflect.DeepEqual(rh, want) {
				t.Errorf("call %d: response %q with headers %v, want %q with %v", i, resp, rh, "body-"+id, want)
			}
		}()
	}
	wg.Wait()
}

// TestInterceptor: an interceptor sees every call, adds a header the
// receiver gets, and reads the response's headers after invoke.
func TestInterceptor(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("headers-interceptor")
	var order []string
	var seen []string
	trace := func(name string) socketbus.Interceptor {
		return func(ctx context.Context, info *socketbus.CallInfo, invoke socketbus.Invoker) error {
			order = append(order, name)
			info.Header.Add("Via", name)
			err := invoke(ctx, info)
			seen = append(seen, name+":"+info.ResponseHeader.Get("Handled"))
			return err
		}
	}
	a := dial(t, addr, ch, socketbus.WithInterceptor(trace("outer"), trace("inner")))
	b := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan *socketbus.Request, 1)
	go func() {
		req, _ := echoHeaders(ctx, b, func(r io.Reader) io.Reader { return r })
		got <- req
	}()
	var rh socketbus.Header
	if _, err := a.Call(ctx, []byte("x"), socketbus.WithHeader(socketbus.Header{"Via": {"caller"}}), socketbus.ResponseHeader(&rh)); err != nil {
		t.Fatalf("Call: %v", err)
	}
	req := <-got
	if want := []string{"caller", "outer", "inner"}; !reflect.DeepEqual(req.Header.Values("Via"), want) {
		t.Fatalf("receiver's Via = %v, want %v", req.Header.Values("Via"), want)
	}
	if want := []string{"outer", "inner"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("interceptors ran in order %v, want %v", order, want)
	}
	if want := []string{"inner:yes", "outer:yes"}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("interceptors saw response headers %v, want %v", seen, want)
	}
	if rh.Get("Handled") != "yes" {
		t.Fatalf("caller's response header = %v, want Handled: yes", rh)
	}
}

// TestHeadersRefusedByTheClient: headers the protocol cannot carry fail
// the call before anything is sent, with an error naming the fault.
func TestHeadersRefusedByTheClient(t *testing.T) {
	a, _ := twoClients(t, "headers-refused")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		h    socketbus.Header
		want error
	}{
		{"a key with a space", socketbus.Header{"Bad Key": {"v"}}, socketbus.ErrProtocol},
		{"a value with a newline", socketbus.Header{"K": {"a\nb"}}, socketbus.ErrProtocol},
		{"over 32 KiB", socketbus.Header{"K": {strings.Repeat("v", 33<<10)}}, socketbus.ErrTooLarge},
	} {
		if _, err := a.Call(ctx, []byte("x"), socketbus.WithHeader(tc.h)); !errors.Is(err, tc.want) {
			t.Errorf("%s: Call = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestWholeV2ResponseTooLongForAHeaderBlock: a v2 responder's whole
// response of 65536 bytes leaves no room for a header block in one frame;
// the server sends it to a v3 requester as start, chunk and end, whole
// and with an empty response Header.
func TestWholeV2ResponseTooLongForAHeaderBlock(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	a := dial(t, addr, ch)
	b := dial(t, addr, ch, socketbus.WithProtocolVersion(2))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := bytes.Repeat([]byte("r"), 65536)
	go func() {
		req, err := b.Receive(ctx)
		if err == nil {
			io.Copy(io.Discard, req.Body)
			req.Respond(bytes.NewReader(body))
		}
	}()
	var rh socketbus.Header
	resp, err := a.Call(ctx, []byte("x"), socketbus.ResponseHeader(&rh))
	if err != nil || !bytes.Equal(resp, body) || rh == nil || len(rh) != 0 {
		t.Fatalf("Call: %d bytes (equal: %v), header %v, %v; want the 65536 bytes and an empty Header", len(resp), bytes.Equal(resp, body), rh, err)
	}
}
