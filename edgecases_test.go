package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// The seed's ten edge cases, now with the seed's concurrency problem fixed.

func TestEdgeConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := socketbus.Dial(ctx, addr, socketbus.ChannelFromName("refused"))
	if err == nil {
		c.Close()
		t.Fatalf("Dial to a closed port: got a client, want an error")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial to a closed port: got %v, want an error wrapping ECONNREFUSED", err)
	}
}

func TestEdgeSendAfterClose(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("send-after-close")
	a := dial(t, addr, ch)
	b := dial(t, addr, ch)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Send(ctx, bytes.NewReader([]byte("x")), nil); !errors.Is(err, socketbus.ErrClosed) {
		t.Fatalf("Send after Close: got %v, want ErrClosed", err)
	}
	if _, err := a.Receive(ctx); !errors.Is(err, socketbus.ErrClosed) {
		t.Fatalf("Receive after Close: got %v, want ErrClosed", err)
	}
	// The server has noticed (or notices while b's request waits): b is alone.
	if err := b.Send(ctx, bytes.NewReader([]byte("x")), nil); !errors.Is(err, socketbus.ErrNoPeers) {
		t.Fatalf("Send with the only peer closed: got %v, want ErrNoPeers", err)
	}
}

func TestEdgeCloseTwice(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	c := dial(t, addr, socketbus.ChannelFromName("close-twice"))
	if err := c.Close(); err != nil {
		t.Fatalf("first Close: got %v, want nil", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: got %v, want nil", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatalf("Done not closed after Close")
	}
	if err := c.Err(); !errors.Is(err, socketbus.ErrClosed) {
		t.Fatalf("Err after Close: got %v, want ErrClosed", err)
	}

	// Concurrent Closes, racing a Send and a Receive.
	d := dial(t, addr, socketbus.ChannelFromName("close-twice"))
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- d.Close()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := d.Receive(context.Background())
		if !errors.Is(err, socketbus.ErrClosed) {
			errs <- fmt.Errorf("Receive racing Close: got %v, want ErrClosed", err)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Close: %v", err)
		}
	}
}

// recordingProxy relays one TCP connection between a client and a server
// and records the bytes going each way, each before it is passed on.
type recordingProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	up, down []byte // client to server, server to client
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &recordingProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *recordingProxy) addr() string { return p.ln.Addr().String() }

func (p *recordingProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.relay(server, client, &p.up)
		go p.relay(client, server, &p.down)
	}
}

func (p *recordingProxy) relay(dst, src net.Conn, record *[]byte) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			*record = append(*record, buf[:n]...)
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

type recordedFrame struct {
	h       wire.Header
	payload []byte
}

// frames parses the bytes recorded in one direction.
func (p *recordingProxy) frames(t *testing.T, up bool) []recordedFrame {
	t.Helper()
	p.mu.Lock()
	b := p.down
	if up {
		b = p.up
	}
	b = append([]byte(nil), b...)
	p.mu.Unlock()
	var out []recordedFrame
	for len(b) > 0 {
		h, n, err := wire.ParseHeader(b)
		if err != nil {
			t.Fatalf("recorded bytes: %v", err)
		}
		end := n + int(h.Length)
		if end > len(b) {
			t.Fatalf("recorded bytes end inside frame %v", h)
		}
		out = append(out, recordedFrame{h, b[n:end]})
		b = b[end:]
	}
	return out
}

// streamFrames returns the frames of request id with exactly these flags.
func streamFrames(fs []recordedFrame, id socketbus.ID, flags wire.Flags) []recordedFrame {
	var out []recordedFrame
	for _, f := range fs {
		if f.h.RequestID == id && f.h.Flags == flags {
			out = append(out, f)
		}
	}
	return out
}

// checkEmptyStream checks that fs is exactly start, one empty chunk, end.
func checkEmptyStream(t *testing.T, what string, fs []recordedFrame) {
	t.Helper()
	var types []string
	for _, f := range fs {
		types = append(types, fmt.Sprintf("%v/seq %d/%d bytes", f.h.Type, f.h.Sequence, len(f.payload)))
	}
	want := []struct {
		typ wire.FrameType
		seq uint32
	}{{wire.TypeStart, 0}, {wire.TypeChunk, 1}, {wire.TypeEnd, 2}}
	// The receiver's copy of the start carries the receive ID as payload.
	ok := len(fs) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = fs[i].h.Type == want[i].typ && fs[i].h.Sequence == want[i].seq &&
			(fs[i].h.Type == wire.TypeStart || len(fs[i].payload) == 0)
	}
	if !ok {
		t.Errorf("%s: got frames %v, want start, exactly one empty chunk, end", what, types)
	}
}

// checkWholeStream checks that fs is one v2 whole frame: a final start
// whose payload is the body (after the 16-byte receive ID, on delivery).
//
// In version 3 the start frame carries an empty header block (2 bytes)
// after the first bodyOffset bytes of its payload (the receive ID of a
// delivery).
func checkWholeStream(t *testing.T, what string, fs []recordedFrame, version uint8, bodyOffset int) {
	t.Helper()
	if version >= wire.Version3 {
		bodyOffset += wire.HeaderBlockLenSize
	}
	if len(fs) != 1 || fs[0].h.Type != wire.TypeStart || !fs[0].h.Final || fs[0].h.Version != version || len(fs[0].payload) != bodyOffset {
		var types []string
		for _, f := range fs {
			types = append(types, fmt.Sprintf("v%d %v/final %v/%d bytes", f.h.Version, f.h.Type, f.h.Final, len(f.payload)))
		}
		t.Errorf("%s: got frames %v, want one v%d final start of %d bytes", what, types, version, bodyOffset)
	}
}

func TestEdgeEmptyBody(t *testing.T) {
	t.Run("v1", func(t *testing.T) { testEdgeEmptyBody(t, 1) })
	t.Run("v2", func(t *testing.T) { testEdgeEmptyBody(t, 2) })
	t.Run("v3", func(t *testing.T) { testEdgeEmptyBody(t, 3) })
}

func testEdgeEmptyBody(t *testing.T, version uint8) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("empty")
	pa := startRecordingProxy(t, addr)
	pb := startRecordingProxy(t, addr)
	a := dial(t, pa.addr(), ch, socketbus.WithProtocolVersion(version))
	b := dial(t, pb.addr(), ch, socketbus.WithProtocolVersion(version))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type received struct {
		id   socketbus.ID
		body []byte
		err  error
	}
	got := make(chan received, 1)
	go func() {
		req, err := b.Receive(ctx)
		if err != nil {
			got <- received{err: err}
			return
		}
		body, err := io.ReadAll(req.Body)
		if err == nil {
			err = req.Respond(bytes.NewReader(nil))
		}
		got <- received{req.ID, body, err}
	}()
	var resp bytes.Buffer
	resp.WriteString("not empty")
	resp.Reset()
	if err := a.Send(ctx, bytes.NewReader(nil), &resp); err != nil {
		t.Fatalf("Send of an empty body: got %v, want nil", err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("receiver: %v", r.err)
	}
	if len(r.body) != 0 {
		t.Fatalf("receiver got a body of %d bytes, want 0", len(r.body))
	}
	if resp.Len() != 0 {
		t.Fatalf("sender got a response of %d bytes, want 0", resp.Len())
	}

	if version >= 2 {
		// On the wire: one whole frame each way, on every hop.
		checkWholeStream(t, "request, client to server", streamFrames(pa.frames(t, true), r.id, wire.FlagRequest), version, 0)
		checkWholeStream(t, "request, server to receiver", streamFrames(pb.frames(t, false), r.id, wire.FlagReceive), version, 16)
		checkWholeStream(t, "response, receiver to server", streamFrames(pb.frames(t, true), r.id, wire.FlagResponse), version, 0)
		checkWholeStream(t, "response, server to sender", streamFrames(pa.frames(t, false), r.id, wire.FlagResponse), version, 0)
		return
	}
	// On the wire: one empty chunk each way, on every hop.
	checkEmptyStream(t, "request, client to server", streamFrames(pa.frames(t, true), r.id, wire.FlagRequest))
	checkEmptyStream(t, "request, server to receiver", streamFrames(pb.frames(t, false), r.id, wire.FlagReceive))
	checkEmptyStream(t, "response, receiver to server", streamFrames(pb.frames(t, true), r.id, wire.FlagResponse))
	checkEmptyStream(t, "response, server to sender", streamFrames(pa.frames(t, false), r.id, wire.FlagResponse))

	// A nil body is an empty body too.
	go func() {
		req, err := b.Receive(ctx)
		if err != nil {
			got <- received{err: err}
			return
		}
		body, err := io.ReadAll(req.Body)
		if err == nil {
			err = req.Respond(nil)
		}
		got <- received{req.ID, body, err}
	}()
	if err := a.Send(ctx, nil, nil); err != nil {
		t.Fatalf("Send of a nil body: got %v, want nil", err)
	}
	if r := <-got; r.err != nil || len(r.body) != 0 {
		t.Fatalf("receiver of a nil body: got %d bytes, %v; want 0, nil", len(r.body), r.err)
	}
}

// randomBytes returns n bytes from r.
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}

// echoCheck has b receive one request, check its body is want, and answer
// it with the body reversed.
func echoCheck(ctx context.Context, b *socketbus.Client, want []byte) error {
	req, err := b.Receive(ctx)
	if err != nil {
		return fmt.Errorf("Receive: %w", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if !bytes.Equal(body, want) {
		return fmt.Errorf("receiver got %d bytes (first difference at %d), want %d bytes", len(body), firstDiff(body, want), len(want))
	}
	return req.Respond(bytes.NewReader(reversed(body)))
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// checkRoundTrip sends body from a to b and checks both directions byte
// for byte.
func checkRoundTrip(t *testing.T, a, b *socketbus.Client, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- echoCheck(ctx, b, body) }()
	got, err := roundTrip(ctx, a, body)
	if err != nil {
		t.Fatalf("Send of %d bytes: %v", len(body), err)
	}
	if err := <-served; err != nil {
		t.Fatalf("receiver of %d bytes: %v", len(body), err)
	}
	if want := reversed(body); !bytes.Equal(got, want) {
		t.Fatalf("response: got %d bytes (first difference at %d), want %d bytes", len(got), firstDiff(got, want), len(want))
	}
}

func TestEdgeLargeBody(t *testing.T) {
	a, b := twoClients(t, "large")
	checkRoundTrip(t, a, b, randomBytes(rand.New(rand.NewPCG(5, 5)), 5<<20))
}

func TestEdgeZeroTimeoutUsesServerDefault(t *testing.T) {
	const def = 200 * time.Millisecond
	_, addr := startServer(t, server.Config{DefaultTimeout: def})
	ch := socketbus.ChannelFromName("default-timeout")
	a, b := dial(t, addr, ch), dial(t, addr, ch)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	taken := make(chan *socketbus.Request, 1)
	go func() {
		req, err := b.Receive(ctx)
		if err != nil {
			t.Errorf("Receive: %v", err)
		}
		taken <- req // and never respond
	}()
	start := time.Now()
	err := a.Send(context.Background(), bytes.NewReader([]byte("no deadline")), nil)
	elapsed := time.Since(start)
	if !errors.Is(err, socketbus.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send without a deadline: got %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
	if elapsed < def {
		t.Fatalf("Send timed out after %v, want at least the server default %v", elapsed, def)
	}
	req := <-taken
	if req == nil {
		t.FailNow()
	}
	if dl, ok := req.Context().Deadline(); !ok || dl.Sub(start) > def+time.Second {
		t.Errorf("receiver's deadline: got %v (set %v), want about %v after the Send", dl.Sub(start), ok, def)
	}
	select {
	case <-req.Context().Done():
	case <-ctx.Done():
		t.Fatalf("receiver's context not cancelled after the timeout")
	}
	if err := req.Respond(bytes.NewReader([]byte("too late"))); err == nil {
		t.Fatalf("Respond after the timeout: got nil, want an error")
	}
}

// gatedReader returns data, then blocks until gate is closed, then fails
// with err: a body whose reader breaks part-way, after the request has
// certainly reached a receiver.
type gatedReader struct {
	data []byte
	gate <-chan struct{}
	err  error
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	<-r.gate
	return 0, r.err
}

func TestEdgeReaderErrorPropagates(t *testing.T) {
	a, b := twoClients(t, "reader-error")
	errBoom := errors.New("boom")

	t.Run("part-way", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		gate := make(chan struct{})
		readErr := make(chan error, 1)
		go func() {
			req, err := b.Receive(ctx)
			close(gate) // the request is at the receiver: now break the reader
			if err != nil {
				readErr <- fmt.Errorf("Receive: %w", err)
				return
			}
			_, err = io.ReadAll(req.Body)
			readErr <- err
		}()
		body := &gatedReader{data: make([]byte, 100<<10), gate: gate, err: errBoom}
		err := a.Send(ctx, body, nil)
		if !errors.Is(err, errBoom) {
			t.Fatalf("Send: got %v, want an error wrapping the reader's", err)
		}
		err = <-readErr
		if err == nil {
			t.Fatalf("receiver's Body read: got a complete body, want an error")
		}
		if !errors.Is(err, socketbus.ErrAborted) {
			t.Fatalf("receiver's Body read: got %v, want ErrAborted", err)
		}
	})
	t.Run("first read", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := a.Send(ctx, &failingReader{err: errBoom}, nil)
		if !errors.Is(err, errBoom) {
			t.Fatalf("Send: got %v, want an error wrapping the reader's", err)
		}
	})
	t.Run("uploader", func(t *testing.T) {
		// The reader fails after several frames, in the upload goroutine,
		// with no receiver yet: the request is still queued.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		body := io.MultiReader(bytes.NewReader(make([]byte, 200<<10)), &failingReader{err: errBoom})
		err := a.Send(ctx, body, nil)
		if !errors.Is(err, errBoom) {
			t.Fatalf("Send: got %v, want an error wrapping the reader's", err)
		}
	})
	// The client still works. The aborted requests may still be queued
	// when b asks for one: those b must see fail, never complete.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		for {
			req, err := b.Receive(ctx)
			if err != nil {
				served <- err
				return
			}
			body, err := io.ReadAll(req.Body)
			if errors.Is(err, socketbus.ErrAborted) {
				continue
			}
			if err != nil {
				served <- fmt.Errorf("reading body: got %v, want nil or ErrAborted", err)
				return
			}
			served <- req.Respond(bytes.NewReader(upper(body)))
			return
		}
	}()
	got, err := roundTrip(ctx, a, []byte("after the failures"))
	if err != nil || string(got) != "AFTER THE FAILURES" {
		t.Fatalf("round trip after the failures: got %q, %v; want %q, nil", got, err, "AFTER THE FAILURES")
	}
	if err := <-served; err != nil {
		t.Fatalf("receiver: %v", err)
	}
}

func TestEdgeConcurrentOperationsOneClient(t *testing.T) {
	a, b := twoClients(t, "one-client-concurrent")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const sends = 32
	var wg sync.WaitGroup
	errs := make(chan error, 4*sends)
	serve := func(c *socketbus.Client, n int) {
		defer wg.Done()
		for i := 0; i < n; i++ {
			req, err := c.Receive(ctx)
			if err != nil {
				errs <- fmt.Errorf("Receive: %w", err)
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				errs <- fmt.Errorf("reading body: %w", err)
				return
			}
			if err := req.Respond(bytes.NewReader(transform(req.From, body))); err != nil {
				errs <- fmt.Errorf("Respond: %w", err)
				return
			}
		}
	}
	send := func(from *socketbus.Client, seed uint64) {
		defer wg.Done()
		r := rand.New(rand.NewPCG(seed, 0))
		body := randomBytes(r, r.IntN(200<<10))
		got, err := roundTrip(ctx, from, body)
		if err != nil {
			errs <- fmt.Errorf("Send %d: %w", seed, err)
			return
		}
		if want := transform(from.ID(), body); !bytes.Equal(got, want) {
			errs <- fmt.Errorf("Send %d: response of %d bytes differs at %d from the %d expected", seed, len(got), firstDiff(got, want), len(want))
		}
	}
	// a sends 32 requests at once and answers b's 32 at the same time,
	// with 4 Receives in flight; b does the same the other way round.
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go serve(a, sends/4)
		go serve(b, sends/4)
	}
	for i := 0; i < sends; i++ {
		wg.Add(2)
		go send(a, uint64(i))
		go send(b, uint64(1000+i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// transform is what receivers answer in the concurrency tests: the body
// reversed and XORed with the sender's ID, so a response that went to the
// wrong Send, or was mixed with another, shows.
func transform(from socketbus.ID, body []byte) []byte {
	out := reversed(body)
	for i := range out {
		out[i] ^= from[i%len(from)]
	}
	return out
}

func TestEdgeManySequentialCycles(t *testing.T) {
	a, b := twoClients(t, "sequential")
	const cycles = 500
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveN(ctx, b, cycles, upper) }()
	for i := 0; i < cycles; i++ {
		body := fmt.Sprintf("cycle %d", i)
		got, err := roundTrip(ctx, a, []byte(body))
		if err != nil {
			t.Fatalf("cycle %d: Send: %v", i, err)
		}
		if want := string(upper([]byte(body))); string(got) != want {
			t.Fatalf("cycle %d: got %q, want %q", i, got, want)
		}
	}
	if err := <-served; err != nil {
		t.Fatalf("receiver: %v", err)
	}
}

func TestEdgeBoundarySizes(t *testing.T) {
	a, b := twoClients(t, "boundaries")
	const m = socketbus.MaxFramePayload
	r := rand.New(rand.NewPCG(7, 7))
	for _, size := range []int{0, 1, 1 << 10, 8 << 10, m - 1, m, m + 1, 3*m + 7} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			checkRoundTrip(t, a, b, randomBytes(r, size))
		})
	}
}
