package cluster_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// Client IDs are unique across the bus, and a client's key protects its
// ID on every node (issue 17, finding 8; docs/PROTOCOL.md section 21.5).

// cuttable is a victim's dialer: its first connection is one the test can
// cut, and its reconnects wait for the gate, then go to redial (the same
// node if empty).
type cuttable struct {
	mu     sync.Mutex
	first  net.Conn
	gate   chan struct{}
	redial string
}

func (d *cuttable) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	again := d.first != nil
	d.mu.Unlock()
	if again {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if d.redial != "" {
			addr = d.redial
		}
	}
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	if err == nil && !again {
		d.mu.Lock()
		d.first = nc
		d.mu.Unlock()
	}
	return nc, err
}

func (d *cuttable) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.first.Close()
}

// dialAs joins node n with a client ID of the caller's choosing, without
// reconnecting, and returns Dial's error.
func dialAs(ctx context.Context, t *testing.T, n *testNode, channel string, id socketbus.ID) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := socketbus.Dial(ctx, n.addr, socketbus.ChannelFromName(channel), socketbus.WithClientID(id),
		socketbus.WithReconnect(socketbus.ReconnectPolicy{MaxAttempts: -1}))
	if err == nil {
		c.Close()
	}
	return err
}

// learnFrom has holder receive one request, answers it, and returns the
// ID it came from: what any member of the channel learns of a sender.
func learnFrom(ctx context.Context, t *testing.T, victim, holder *socketbus.Client) socketbus.ID {
	t.Helper()
	got := make(chan socketbus.ID, 1)
	go func() {
		req, err := holder.Receive(ctx)
		if err != nil {
			return
		}
		got <- req.From
		_ = req.Respond(strings.NewReader("ok"))
	}()
	if _, err := victim.Call(ctx, []byte("learn")); err != nil {
		t.Fatalf("victim's Call: %v", err)
	}
	select {
	case id := <-got:
		return id
	case <-ctx.Done():
		t.Fatal("the holder received no request")
		return socketbus.ID{}
	}
}

// callOnce has victim call with body, holder receive it, and checks that
// it ran once under the victim's ID.
func callOnce(ctx context.Context, t *testing.T, victim, holder *socketbus.Client, body string) {
	t.Helper()
	type run struct {
		from socketbus.ID
		body string
	}
	got := make(chan run, 2)
	go func() {
		req, err := holder.Receive(ctx)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		got <- run{req.From, string(body)}
		_ = req.Respond(strings.NewReader("ok"))
	}()
	if _, err := victim.Call(ctx, []byte(body)); err != nil {
		t.Fatalf("victim's Call %q: %v", body, err)
	}
	r := <-got
	if r.from != victim.ID() || r.body != body {
		t.Fatalf("the holder ran %q from %s, want %q from the victim %s", r.body, r.from, body, victim.ID())
	}
	select {
	case r := <-got:
		t.Fatalf("the holder ran %q a second time", r.body)
	default:
	}
}

// TestBusClientIDNotImpersonated: a member learns a connected victim's ID
// from Request.From and joins another node of the bus with it: refused
// with ErrConflict, and the victim's requests still run once under its
// own identity.
func TestBusClientIDNotImpersonated(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	victim := dial(t, b.node(0), t.Name())
	holder := dial(t, b.node(0), t.Name())

	id := learnFrom(ctx, t, victim, holder)
	if id != victim.ID() {
		t.Fatalf("Request.From = %s, want the victim's ID %s", id, victim.ID())
	}
	if err := dialAs(ctx, t, b.node(1), t.Name(), id); !errors.Is(err, socketbus.ErrConflict) {
		t.Fatalf("a join with the victim's ID on the other node: got %v, want ErrConflict", err)
	}
	if err := dialAs(ctx, t, b.node(0), t.Name(), id); !errors.Is(err, socketbus.ErrConflict) {
		t.Fatalf("a join with the victim's ID on its node: got %v, want ErrConflict", err)
	}
	for _, body := range []string{"one", "two", "three"} {
		callOnce(ctx, t, victim, holder, body)
	}
}

// TestBusClientMovesWithItsKey: a victim's connection to one node is cut;
// while it is away, a member that learned its ID joins another node with
// it: refused, as the node it left remembers its key. The victim's
// reconnect goes to that other node with its key: admitted, its requests
// run once under its ID, and then its ID is refused on a third node.
func TestBusClientMovesWithItsKey(t *testing.T) {
	b := newTestBus(t, 3, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := &cuttable{gate: make(chan struct{}), redial: b.node(1).addr}
	restored := make(chan struct{}, 1)
	victim := dial(t, b.node(0), t.Name(), socketbus.WithDialer(d.dial), socketbus.WithReconnect(socketbus.ReconnectPolicy{}),
		socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
			if ev.State == socketbus.ConnectionRestored {
				restored <- struct{}{}
			}
		}))
	holder := dial(t, b.node(0), t.Name())
	// A receiver on the node the victim moves to: a request that crosses
	// nodes comes from the remote sender's ID (PROTOCOL.md 21.4).
	holder2 := dial(t, b.node(1), t.Name())
	id := learnFrom(ctx, t, victim, holder)

	// A request the holder keeps: its end at the holder says node 0 has
	// seen the victim leave.
	held := make(chan *socketbus.Request, 1)
	go func() {
		if req, err := holder.Receive(ctx); err == nil {
			held <- req
		}
	}()
	go func() { _, _ = victim.Call(ctx, []byte("held")) }()
	var req *socketbus.Request
	select {
	case req = <-held:
	case <-ctx.Done():
		t.Fatal("the holder received no request")
	}
	d.cut()
	select {
	case <-req.Context().Done():
	case <-ctx.Done():
		t.Fatal("the held request did not end when the victim's connection was cut")
	}

	for i, n := range []*testNode{b.node(1), b.node(2), b.node(0)} {
		if err := dialAs(ctx, t, n, t.Name(), id); !errors.Is(err, socketbus.ErrConflict) {
			t.Fatalf("a join with the away victim's ID on node %s (%d): got %v, want ErrConflict", n.name, i, err)
		}
	}
	close(d.gate)
	select {
	case <-restored:
	case <-ctx.Done():
		t.Fatal("the victim did not reconnect to another node")
	}
	// The join's visibility rule: node n1 saw the victim on n2 before
	// the reconnect returned.
	if got := b.node(0).c.ChannelMembers(socketbus.ChannelFromName(t.Name())); got["n2"] != 2 {
		t.Fatalf("members on the other nodes, as n1 sees them: %v, want n2:2 (the victim and holder2)", got)
	}
	for _, body := range []string{"one", "two"} {
		callOnce(ctx, t, victim, holder2, body)
	}
	if err := dialAs(ctx, t, b.node(2), t.Name(), id); !errors.Is(err, socketbus.ErrConflict) {
		t.Fatalf("a join with the moved victim's ID on a third node: got %v, want ErrConflict", err)
	}
}

// TestBusClientIDRace: two nodes admit joins with the same ID at the same
// instant, over and over: exactly one of each pair survives.
func TestBusClientIDRace(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const rounds = 20
	won := map[string]int{}
	for round := range rounds {
		id := socketbus.ID(uuid.New())
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			clients [2]*socketbus.Client
			errs    [2]error
		)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
				defer dcancel()
				clients[i], errs[i] = socketbus.Dial(dctx, b.node(i).addr, socketbus.ChannelFromName(t.Name()),
					socketbus.WithClientID(id), socketbus.WithReconnect(socketbus.ReconnectPolicy{MaxAttempts: -1}))
			}()
		}
		close(start)
		wg.Wait()
		survivors := 0
		for i := range 2 {
			switch {
			case errs[i] == nil:
				survivors++
				won[b.node(i).name]++
			case !errors.Is(errs[i], socketbus.ErrConflict):
				t.Errorf("round %d: the join on %s: got %v, want nil or ErrConflict", round, b.node(i).name, errs[i])
			}
		}
		if survivors != 1 {
			t.Errorf("round %d: %d of the two joins with one ID survived, want exactly 1 (errors %v, %v)", round, survivors, errs[0], errs[1])
		}
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}
	races := b.node(0).c.ClaimRaces() + b.node(1).c.ClaimRaces()
	t.Logf("%d rounds: joins admitted per node %v; claims that met a join of the same ID still waiting: %d", rounds, won, races)
}

// lingering is a connection the test can cut on the client's side only:
// the client sees it end, while the node's side stays open, as with a
// network that fails silently, until the test ends.
type lingering struct {
	net.Conn
	mu  sync.Mutex
	cut bool
}

func (l *lingering) isCut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut
}

func (l *lingering) Read(b []byte) (int, error) {
	if l.isCut() {
		return 0, io.EOF
	}
	n, err := l.Conn.Read(b)
	if l.isCut() {
		return 0, io.EOF
	}
	return n, err
}

func (l *lingering) Write(b []byte) (int, error) {
	if l.isCut() {
		return 0, net.ErrClosed
	}
	return l.Conn.Write(b)
}

func (l *lingering) Close() error {
	if l.isCut() {
		return nil // the node's side lingers
	}
	return l.Conn.Close()
}

func (l *lingering) cutClientSide() {
	l.mu.Lock()
	l.cut = true
	l.mu.Unlock()
	_ = l.Conn.SetReadDeadline(time.Now()) // wakes the client's reader
}

// TestBusClientMovesWhileItsOldConnectionLingers: a client whose
// connection to one node failed on its side only reconnects to another
// node, with its key, while the first node still has it connected: the
// first node answers the claim of its own client (the key matches) with
// an admission, so the client is not locked out until that node notices,
// and its requests run once. The same holds for a move on a drain notice
// (PROTOCOL.md section 17). A join with its ID and no key is refused.
func TestBusClientMovesWhileItsOldConnectionLingers(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		first *lingering
	)
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		again := first != nil
		mu.Unlock()
		if again {
			addr = b.node(1).addr
		}
		var nd net.Dialer
		nc, err := nd.DialContext(ctx, network, addr)
		if err != nil || again {
			return nc, err
		}
		l := &lingering{Conn: nc}
		mu.Lock()
		first = l
		mu.Unlock()
		t.Cleanup(func() { nc.Close() })
		return l, nil
	}
	restored := make(chan struct{}, 1)
	victim := dial(t, b.node(0), t.Name(), socketbus.WithDialer(dialer), socketbus.WithReconnect(socketbus.ReconnectPolicy{}),
		socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
			if ev.State == socketbus.ConnectionRestored {
				restored <- struct{}{}
			}
		}))
	holder := dial(t, b.node(1), t.Name())
	channel := socketbus.ChannelFromName(t.Name())

	mu.Lock()
	l := first
	mu.Unlock()
	l.cutClientSide()
	select {
	case <-restored:
	case <-ctx.Done():
		t.Fatal("the victim did not reconnect to the other node")
	}
	// n1 still has the old connection: n2 sees the victim's member there.
	if got := b.node(1).c.ChannelMembers(channel); got["n1"] != 1 {
		t.Fatalf("members on n1 as n2 sees them: %v, want n1:1 (the lingering connection)", got)
	}
	for _, body := range []string{"one", "two"} {
		callOnce(ctx, t, victim, holder, body)
	}
	if err := dialAs(ctx, t, b.node(1), t.Name(), victim.ID()); !errors.Is(err, socketbus.ErrConflict) {
		t.Fatalf("a join with the victim's ID and no key: got %v, want ErrConflict", err)
	}
}
