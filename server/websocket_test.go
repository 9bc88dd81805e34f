package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// startBothServer runs a server with a TCP and a WebSocket listener and
// returns the TCP address and the WebSocket URL.
func startBothServer(t testing.TB, cfg server.Config) (tcpAddr, wsURL string) {
	t.Helper()
	srv, wsURL := testpeer.StartWebSocketServer(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, socketbus.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), wsURL
}

// TestWebSocketRoundTrip: a Go client over WebSocket sends to a TCP
// responder and answers a TCP sender, bodies of every size class byte-exact,
// over ws:// and wss://.
func TestWebSocketRoundTrip(t *testing.T) {
	cert, pool := testpeer.Certificate(t)
	for _, tc := range []struct {
		name string
		cfg  server.Config
		tls  *tls.Config
	}{
		{"ws", server.Config{}, nil},
		{"wss", server.Config{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}, &tls.Config{RootCAs: pool}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, url := startBothServer(t, tc.cfg)
			channel := socketbus.ChannelFromName("ws-round-trip-" + tc.name)
			ws := dial(t, "websocket", channel, testpeer.WebSocketDialer(url, "", tc.tls))
			var tcpOpts []socketbus.DialOption
			if tc.tls != nil {
				tcpOpts = append(tcpOpts, socketbus.WithTLS(tc.tls))
			}
			tcp := dial(t, addr, channel, tcpOpts...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sizes := []int{0, 1, 16383, 16384, 65537, 3 << 20}
			for _, pair := range []struct {
				what           string
				sender, server *socketbus.Client
			}{{"ws sends", ws, tcp}, {"ws serves", tcp, ws}} {
				served := make(chan error, 1)
				go func() { served <- serveN(ctx, pair.server, len(sizes), upper) }()
				for _, n := range sizes {
					body := bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n]
					got, err := roundTrip(ctx, pair.sender, body)
					if want := bytes.ToUpper(body); err != nil || !bytes.Equal(got, want) {
						t.Fatalf("%s, %d bytes: got %d bytes, %v; want %d bytes equal to the body upper-cased", pair.what, n, len(got), err, len(want))
					}
				}
				if err := <-served; err != nil {
					t.Fatalf("%s: responder: %v", pair.what, err)
				}
			}
		})
	}
}

// upgradeStatus makes a WebSocket upgrade request to url with the given
// Origin header (none when empty) and returns the response's status.
func upgradeStatus(t *testing.T, url, origin string) int {
	t.Helper()
	req, err := http.NewRequest("GET", strings.Replace(url, "ws://", "http://", 1), nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("upgrade request: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestWebSocketOrigin: a page from an origin not listed gets 403 and never
// joins; a listed origin (whole, or by host), "*" and clients without an
// Origin are admitted.
func TestWebSocketOrigin(t *testing.T) {
	for _, tc := range []struct {
		origins []string
		origin  string
		want    int
	}{
		{nil, "", http.StatusSwitchingProtocols},
		{nil, "http://127.0.0.1:8080", http.StatusForbidden},
		{[]string{"http://good.example"}, "http://evil.example", http.StatusForbidden},
		{[]string{"http://good.example"}, "https://good.example", http.StatusForbidden},
		{[]string{"http://good.example"}, "http://GOOD.example", http.StatusSwitchingProtocols},
		{[]string{"good.example:8443"}, "https://good.example:8443", http.StatusSwitchingProtocols},
		{[]string{"good.example:8443"}, "null", http.StatusForbidden},
		{[]string{"*"}, "http://anything.example", http.StatusSwitchingProtocols},
		{[]string{"http://good.example"}, "", http.StatusSwitchingProtocols},
	} {
		_, url := testpeer.StartWebSocketServer(t, server.Config{WebSocketOrigins: tc.origins})
		if got := upgradeStatus(t, url, tc.origin); got != tc.want {
			t.Errorf("origins %q, Origin %q: got status %d, want %d", tc.origins, tc.origin, got, tc.want)
		}
	}
	// And a client from a refused origin cannot dial at all.
	_, url := testpeer.StartWebSocketServer(t, server.Config{WebSocketOrigins: []string{"http://good.example"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := socketbus.Dial(ctx, "websocket", socketbus.ChannelFromName("ws-origin"), testpeer.NoReconnect,
		testpeer.WebSocketDialer(url, "http://evil.example", nil))
	if err == nil {
		t.Fatalf("Dial from a refused origin: got nil error, want one")
	}
	c := dial(t, "websocket", socketbus.ChannelFromName("ws-origin"), testpeer.WebSocketDialer(url, "http://good.example", nil))
	c.Close()
}

// TestWebSocketBadMessages: a message over the size bound and a text
// message each end their connection (and only theirs), before the join as
// after it.
func TestWebSocketBadMessages(t *testing.T) {
	_, url := testpeer.StartWebSocketServer(t, server.Config{})
	channel := socketbus.ChannelFromName("ws-bad")
	a := dial(t, "websocket", channel, testpeer.WebSocketDialer(url, "", nil))
	b := dial(t, "websocket", channel, testpeer.WebSocketDialer(url, "", nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A join and then pings, in one message over the bound: the server
	// reads the join and answers pings until the message passes 1 MiB.
	join := wire.Header{Version: wire.Version2, Type: wire.TypeStart, Flags: wire.FlagJoin,
		RequestID: uuid.New(), ClientID: uuid.New(), ChannelID: channel, Final: true}
	big := wire.AppendHeader(nil, &join)
	ping := join
	ping.Flags, ping.RequestID = wire.FlagPing, uuid.UUID{}
	for len(big) <= 1<<20 {
		big = wire.AppendHeader(big, &ping)
	}
	for _, tc := range []struct {
		name   string
		typ    websocket.MessageType
		msg    []byte
		status websocket.StatusCode
	}{
		{"over the bound", websocket.MessageBinary, big, websocket.StatusMessageTooBig},
		{"text", websocket.MessageText, []byte("hello"), -1},
	} {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatalf("%s: dial: %v", tc.name, err)
		}
		ws.SetReadLimit(-1)
		wrote := make(chan error, 1)
		go func() { wrote <- ws.Write(ctx, tc.typ, tc.msg) }()
		for err == nil {
			_, _, err = ws.Read(ctx) // the join's acknowledgement, pongs
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: the server did not close the connection: %v", tc.name, err)
		}
		if got := websocket.CloseStatus(err); tc.status != -1 && got != tc.status {
			t.Errorf("%s: got close status %v (%v), want %v", tc.name, got, err, tc.status)
		}
		<-wrote // fails or not: the server may close before it has read it all
		ws.CloseNow()
	}
	served := make(chan error, 1)
	go func() { served <- serveN(ctx, b, 1, upper) }()
	if got, err := roundTrip(ctx, a, []byte("still serving")); err != nil || string(got) != "STILL SERVING" {
		t.Fatalf("round trip after the bad connections: got %q, %v; want %q, nil", got, err, "STILL SERVING")
	}
	if err := <-served; err != nil {
		t.Fatalf("responder: %v", err)
	}
}

// TestWebSocketFrameReadTimeout: a frame that stalls half way over
// WebSocket is answered as on TCP, with a connection-level idle error
// frame: the adapter's read deadline fails the read without closing the
// WebSocket (the library's own adapter would close it).
func TestWebSocketFrameReadTimeout(t *testing.T) {
	_, url := testpeer.StartWebSocketServer(t, server.Config{FrameReadTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	channel := socketbus.ChannelFromName("ws-stall")
	join := wire.Header{Version: wire.Version2, Type: wire.TypeStart, Flags: wire.FlagJoin,
		RequestID: uuid.New(), ClientID: uuid.New(), ChannelID: channel, Final: true}
	ping := join
	ping.Flags, ping.RequestID = wire.FlagPing, uuid.UUID{}
	msg := wire.AppendHeader(nil, &join)
	msg = wire.AppendHeader(msg, &ping)[:len(msg)+10] // the join, then 10 bytes of a ping
	if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	var frames []wire.Header
	var last []byte
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			break
		}
		for len(b) >= wire.HeaderSize {
			h, _, err := wire.ParseHeader(b)
			if err != nil {
				t.Fatalf("a frame from the server: %v", err)
			}
			frames = append(frames, h)
			last = b[wire.HeaderSize : wire.HeaderSize+int(h.Length)]
			b = b[wire.HeaderSize+int(h.Length):]
		}
	}
	if len(frames) != 2 || frames[0].Flags != wire.FlagJoin || frames[1].Type != wire.TypeError || frames[1].Flags != 0 {
		t.Fatalf("got frames %v, want the join's acknowledgement and a connection-level error", frames)
	}
	if e, err := wire.ParseError(last); err != nil || e.Code != wire.CodeIdle {
		t.Fatalf("the error frame: %v, %v; want code idle", e, err)
	}
}
