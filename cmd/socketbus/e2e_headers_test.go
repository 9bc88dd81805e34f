//go:build unix

package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/socketbus/socketbus"
)

// TestHeadersEndToEnd runs the built binary: send -H sends headers and
// --include prints the response's; receive --exec passes the request's
// headers as environment variables and a failing command's "code: ..."
// line becomes the remote error's code; receive without --exec prints
// them; neither the debug log nor status --conns shows a header value.
func TestHeadersEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil, "--monitor", "127.0.0.1:0", "--log-level", "debug")
	const secret = "Bearer s3cr3t-t0ken"
	startReceiver(t, bin, srv, "--channel", "env", "--exec",
		`printf '%s|%s|%s' "$SOCKETBUS_HEADER_TRACE_ID" "$SOCKETBUS_HEADER_X_TAG" "${SOCKETBUS_HEADER_AUTHORIZATION:+set}"`)
	startReceiver(t, bin, srv, "--channel", "coded", "--exec", "cat >/dev/null; echo 'code: not_found' >&2; echo 'no such order' >&2; exit 1")
	send := func(args ...string) result {
		t.Helper()
		return runCmd(t, bin, nil, "", append([]string{"send", "--server", srv.addr}, args...)...)
	}

	t.Run("exec sees headers", func(t *testing.T) {
		res := send("--channel", "env", "--data", "x", "-H", "Trace-Id: 4bf92f35", "-H", "x-tag: one", "--header", "X-Tag:two", "-H", "Authorization: "+secret)
		checkSuccess(t, res, "4bf92f35|one, two|set")
	})
	t.Run("code from a failing command", func(t *testing.T) {
		res := send("--channel", "coded", "--data", "x")
		checkFailure(t, res, exitRemote, "not_found: no such order")
		if strings.Contains(res.stderr, "code:") {
			t.Errorf("stderr %q still holds the code line", res.stderr)
		}
	})
	t.Run("bad header flag", func(t *testing.T) {
		res := send("--channel", "env", "--data", "x", "-H", "no colon")
		if res.code != exitUsage || !strings.Contains(res.stderr, "Key: value") {
			t.Errorf("exit %d, stderr %q; want %d and a word on the form", res.code, res.stderr, exitUsage)
		}
	})
	t.Run("include and receive prints headers", func(t *testing.T) {
		recv := startReceiver(t, bin, srv, "--channel", "inbox")
		res := send("--channel", "inbox", "--data", "a message\n", "-H", "Trace-Id: abc", "-H", "Trace-Id: def", "--include")
		if res.code != 0 {
			t.Fatalf("send --include: exit %d, stderr %q", res.code, res.stderr)
		}
		if code := recv.wait(); code != 0 || recv.stdout.String() != "a message\n" {
			t.Errorf("receive: exit %d, stdout %q; want 0 and the body", code, recv.stdout)
		}
		if got := recv.stderr.String(); !strings.Contains(got, "Trace-Id: abc\nTrace-Id: def\n\n") {
			t.Errorf("receive's stderr %q lacks the request's headers", got)
		}
		// The response of receive without --exec has no headers: nothing
		// printed, and the empty body.
		if res.stdout != "" || res.stderr != "" {
			t.Errorf("send --include of a response without headers: stdout %q, stderr %q; want nothing", res.stdout, res.stderr)
		}
	})
	t.Run("include prints response headers first", func(t *testing.T) {
		// A responder in Go that sets response headers: the binary's own
		// receive sets none, so a client of this module answers.
		c := dialTest(t, srv.addr, "with-headers")
		go serveWithHeaders(c)
		res := send("--channel", "with-headers", "--data", "body", "--include")
		if res.code != 0 || res.stdout != "BODY" || res.stderr != "Content-Type: text/plain\nX-Id: 1\nX-Id: 2\n\n" {
			t.Errorf("send --include: exit %d, stdout %q, stderr %q; want 0, BODY and the two headers", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("no header value in logs or status", func(t *testing.T) {
		st := runCmd(t, bin, nil, "", "status", "--monitor", srv.monitor, "--conns")
		for _, out := range []string{srv.stdout.String(), srv.stderr.String(), st.stdout, st.stderr} {
			if strings.Contains(out, "s3cr3t") || strings.Contains(out, "4bf92f35") {
				t.Errorf("a header value shows in the server's log or status output: %q", abbreviate(out))
			}
		}
		if !strings.Contains(srv.stderr.String()+srv.stdout.String(), "level=DEBUG") {
			t.Errorf("the server logged nothing at debug: the check above saw nothing")
		}
	})
}

// dialTest joins channel on addr with a client of this module, closed
// when the test ends.
func dialTest(t *testing.T, addr, channel string) *socketbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := socketbus.Dial(ctx, addr, socketbus.ChannelFromName(channel))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serveWithHeaders answers requests on c until it closes: the body
// upper-cased, with two response headers.
func serveWithHeaders(c *socketbus.Client) {
	c.Serve(context.Background(), socketbus.HandlerFunc(func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		h := req.ResponseHeader()
		h.Set("Content-Type", "text/plain")
		h.Add("X-Id", "1")
		h.Add("X-Id", "2")
		req.Respond(bytes.NewReader(bytes.ToUpper(body)))
	}))
}
