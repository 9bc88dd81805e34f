package socketbus_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// TestConns checks Server.Conns and the per-channel counts against known
// traffic: three requests of 1000 bytes answered, a fourth held by its
// receiver, and a connection that has not joined.
func TestConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 16)
	srv := server.New(server.Config{JoinTimeout: time.Minute,
		ChannelName: func(id socketbus.ID) string {
			if id == socketbus.ChannelFromName("connz") {
				return "connz"
			}
			return ""
		}})
	go srv.Serve(acceptNotifier{ln, accepted})
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	ch := socketbus.ChannelFromName("connz")
	var senderAddr, receiverAddr string
	// Version 1 clients: the frame counts below are v1's, three frames a
	// body each way (version 2 sends a small body as one frame).
	v1 := socketbus.WithProtocolVersion(1)
	sender := dial(t, addr, ch, addrDialer(&senderAddr), v1)
	receiver := dial(t, addr, ch, addrDialer(&receiverAddr), v1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go serveN(ctx, receiver, 3, upper)
	body := bytes.Repeat([]byte("x"), 1000)
	for range 3 {
		if _, err := roundTrip(ctx, sender, body); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	}
	// A fourth request, taken and not answered.
	held := make(chan *socketbus.Request, 1)
	go func() {
		req, err := receiver.Receive(ctx)
		if err == nil {
			held <- req
		}
	}()
	sendErr := make(chan error, 1)
	go func() { sendErr <- sender.Send(ctx, bytes.NewReader(body), io.Discard) }()
	req := <-held
	if _, err := io.ReadAll(req.Body); err != nil {
		t.Fatalf("reading the held request: %v", err)
	}
	pending := testpeer.Dial(t, addr) // connected, not joined
	for range 4 {
		<-accepted // the fourth Accept: the server has registered all three connections
	}

	conns := srv.Conns()
	if len(conns) != 3 {
		t.Fatalf("Conns() has %d connections, want 3: %+v", len(conns), conns)
	}
	byAddr := make(map[string]server.ConnStats)
	for _, c := range conns {
		byAddr[c.RemoteAddr] = c
	}
	s, r, p := byAddr[senderAddr], byAddr[receiverAddr], byAddr[pending.NC.LocalAddr().String()]
	if !s.Joined || s.ClientID != sender.ID() || s.Channel != ch || s.ChannelName != "connz" || s.TLS {
		t.Errorf("sender: %+v, want joined as %s on connz (%s), no TLS", s, sender.ID(), ch)
	}
	if s.Sent != 4 || s.Sending != 1 || s.Received != 0 || s.Receiving != 0 {
		t.Errorf("sender: sent %d (sending %d), received %d (receiving %d); want 4 (1), 0 (0)", s.Sent, s.Sending, s.Received, s.Receiving)
	}
	if r.Received != 4 || r.Receiving != 1 || r.Sent != 0 {
		t.Errorf("receiver: received %d (receiving %d), sent %d; want 4 (1), 0", r.Received, r.Receiving, r.Sent)
	}
	// The server counts what it reads before handling it, so the sender's
	// four bodies are in; it counts a write once writev returns, which may
	// be after the client has read it, so only the first three bodies
	// (whose responses have come back) are sure to count at the receiver.
	if s.BytesIn < 4000 || r.BytesOut < 3000 || s.FramesIn < 4*3 || r.FramesOut < 3*2 {
		t.Errorf("sender read %d bytes in %d frames, receiver was written %d in %d; want at least 4 and 3 bodies of 1000 bytes",
			s.BytesIn, s.FramesIn, r.BytesOut, r.FramesOut)
	}
	if s.Age <= 0 || s.Idle < 0 || s.Idle > s.Age || s.MemoryBytes < 0 || s.QueuedBytes < 0 {
		t.Errorf("sender: age %v, idle %v, memory %d, queued %d; want 0 <= idle <= age and no negative bytes", s.Age, s.Idle, s.MemoryBytes, s.QueuedBytes)
	}
	if p.RemoteAddr == "" || p.Joined || p.ClientID != (socketbus.ID{}) {
		t.Errorf("unjoined connection: %+v, want listed, not joined, no client", p)
	}
	if conns[0].Age < conns[1].Age || conns[1].Age < conns[2].Age {
		t.Errorf("Conns not oldest first: ages %v %v %v", conns[0].Age, conns[1].Age, conns[2].Age)
	}
	if st := srv.Stats(); st.Accepted != 3 || st.Joined != 2 {
		t.Errorf("Stats: %d accepted, %d joined; want 3 and 2", st.Accepted, st.Joined)
	}
	cs := srv.Stats().Channel(ch)
	if cs.Name != "connz" || cs.Requests["completed"] != 3 || cs.InFlight != 1 {
		t.Errorf("channel stats %+v, want name connz, 3 completed, 1 in flight", cs)
	}
	req.Respond(bytes.NewReader(nil))
	if err := <-sendErr; err != nil {
		t.Errorf("the held request: %v", err)
	}
}

// acceptNotifier is a listener that signals every call of Accept: Serve
// calls it again only once it has registered the connection the last call
// returned, so the (n+1)th signal says n connections are registered.
type acceptNotifier struct {
	net.Listener
	accepted chan<- struct{}
}

func (l acceptNotifier) Accept() (net.Conn, error) {
	select {
	case l.accepted <- struct{}{}:
	default:
	}
	return l.Listener.Accept()
}

// TestJoinWithChannelName checks that a name given when joining shows in
// Conns, Stats and the log, that the token still reaches Authenticate,
// and that the name is forgotten when the last client that gave it leaves.
func TestJoinWithChannelName(t *testing.T) {
	var tokens []string
	var mu sync.Mutex
	srv, addr, logs := testpeer.LoggedServer(t, server.Config{Authenticate: func(_, _ socketbus.ID, token string) error {
		mu.Lock()
		tokens = append(tokens, token)
		mu.Unlock()
		return nil
	}})
	ch := socketbus.ChannelFromName("named")
	named := dial(t, addr, ch, socketbus.WithChannelName("named"), socketbus.WithToken("tok"))
	dial(t, addr, ch, socketbus.WithToken("plain")) // a join as before: the token alone
	logs.Wait(t, "connection joined", map[string]string{"client": named.ID().String(), "channel_name": "named"})
	if cs := srv.Stats().Channel(ch); cs.Name != "named" {
		t.Errorf("Stats names the channel %q, want named", cs.Name)
	}
	for _, c := range srv.Conns() {
		if c.ClientID == named.ID() && c.ChannelName != "named" {
			t.Errorf("Conns names the channel %q, want named", c.ChannelName)
		}
	}
	mu.Lock()
	if strings.Join(tokens, " ") != "tok plain" {
		t.Errorf("Authenticate saw tokens %q, want tok and plain", tokens)
	}
	mu.Unlock()
	named.Close()
	logs.Wait(t, "connection closed", map[string]string{"client": named.ID().String()})
	if cs := srv.Stats().Channel(ch); cs.Name != "" {
		t.Errorf("after the named client left, Stats names the channel %q, want none", cs.Name)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := socketbus.Dial(ctx, addr, ch, socketbus.WithChannelName("other")); err == nil {
		t.Error("Dial with a name that is not the channel's succeeded")
	}
}
