// Package socketbus is a request/response message bus over TCP: a Server
// that routes requests between the clients joined to each channel, and the
// Client that talks to it.
//
// # Model
//
// A Client joins one channel when it is dialled. Send streams a request
// body to the server, which hands it to exactly one other client on the
// channel that is waiting in Receive — never to the sender itself, never
// to another channel — and streams that client's response back to the
// sender only. Requests wait in a per-channel FIFO until a receiver asks
// for one; receivers are served in the order they asked. Send fails at once
// with ErrNoPeers when no other client is joined.
//
//	srv := socketbus.NewServer(socketbus.ServerConfig{})
//	go srv.ListenAndServe("127.0.0.1:7411")
//
//	ch := socketbus.ChannelFromName("orders")
//	responder, _ := socketbus.Dial(ctx, "127.0.0.1:7411", ch)
//	go responder.Serve(ctx, socketbus.HandlerFunc(func(req *socketbus.Request) {
//		body, _ := io.ReadAll(req.Body)
//		req.Respond(bytes.NewReader(process(body)))
//	}))
//
//	requester, _ := socketbus.Dial(ctx, "127.0.0.1:7411", ch)
//	resp, err := requester.Call(ctx, order)
//
// Call and Serve hold bodies in memory; Send and Receive stream them, for
// bodies of any size: Send reads the request from an io.Reader and writes
// the response to an io.Writer, and Receive hands over one request at a
// time.
//
// # Streams, flow control and memory
//
// Every body, request or response, is a stream of frames of at most
// MaxFramePayload bytes with a 68-byte header (docs/PROTOCOL.md in the
// repository is the wire reference). Bodies may be of any size: credit-based
// flow control on every hop keeps at most one window (256 KiB) of each
// stream in the server and in each client, so the server's memory stays
// bounded whatever the bodies weigh, and a reader that stops reading one
// stream stalls that stream only. ServerConfig.MaxMessageBytes caps bodies
// when you want a cap (ErrTooLarge).
//
// # Concurrency
//
// A Client is safe for concurrent use. Any number of Calls, Sends and
// Receives may be in flight on one connection: frames of different requests
// interleave on the wire and are demultiplexed by request ID.
//
// Serve runs its Handler on at most 64 requests at once by default
// (WithConcurrency sets another limit). It does not ask for each request:
// it tells the server once how many requests it can take — as many as it
// has idle handlers — and the server pushes them ahead, up to that many,
// with no round trip per request, each handler giving its credit back as
// it returns. A busy Serve therefore holds no request it is not running
// while another receiver is idle. Serve answers for a handler that
// returns without answering, or panics, with a *RemoteError, so a
// requester never waits out its timeout for it. Serve and Receive may be
// used on one client; they share its requests (a second Serve running at
// the same time on one client waits in Receive calls instead).
//
// When Serve's context ends, it stops taking requests and returns
// ctx.Err() once every handler it started has returned. Requests the
// server had pushed to it that no handler had taken go back to the head of
// the channel's queue and are served by another receiver: never lost,
// never run twice. Client.Close gives them back the same way before it
// closes. When the client closes, Serve returns the client's error (see
// Client.Err) once its handlers return; the requests its handlers were
// running have their contexts cancelled and their senders get
// ErrPeerGone, and so do all the requests a client held when its
// connection is lost rather than closed.
//
// Clients speak protocol version 2 (docs/PROTOCOL.md, section 20): a body
// that fits one frame travels in one frame, and nothing is acknowledged
// that nobody waits on. The server serves version-1 clients alongside.
//
// # Timeouts, cancellation and failures
//
// The deadline of Send's (and Call's) context travels with the request and the server
// enforces it end to end: the sender gets an error matching ErrTimeout and
// context.DeadlineExceeded, and the receiver's Request.Context is
// cancelled. Cancelling Send's context cancels the request at the receiver
// too. Every request ends exactly once — with its response, an error or a
// timeout: ErrPeerGone when the other side disconnects, a *RemoteError when
// the receiver calls Request.Fail, ErrServerClosed during Server.Shutdown.
//
// # Security and limits
//
// ServerConfig holds TLS, an Authenticate hook for the token clients
// present with WithToken, and limits on connections, requests in flight,
// queues, frame and join times, and keepalive. SECURITY.md in the
// repository describes the threat model and each limit's default.
package socketbus
