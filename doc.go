// Package socketbus is the client of a request/response message bus over
// TCP: a server (package github.com/socketbus/socketbus/server) routes
// requests between the clients joined to each channel, and the Client in
// this package talks to it. A program that only uses the Client links
// neither the server nor NATS.
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
//	srv := server.New(server.Config{})
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
// stream stalls that stream only. server.Config.MaxMessageBytes caps bodies
// when you want a cap (ErrTooLarge).
//
// # Concurrency
//
// A Client is safe for concurrent use. Any number of Calls, Sends and
// Receives may be in flight on one connection: frames of different requests
// interleave on the wire and are demultiplexed by request ID.
//
// Serve runs its Handler on at most 512 requests at once by default
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
// the receiver calls Request.Fail (with the application's Code when it gave
// one), ErrServerClosed during Server.Shutdown.
//
// # Headers, error codes and middleware
//
// A request and its response carry headers (protocol version 3): the
// call options WithHeader(h) and ResponseHeader(&h) on Call and Send, and
// on the receiving side Request.Header and Request.ResponseHeader(), which
// the handler sets before Respond or Fail. Header is a multimap with
// case-insensitive keys, like net/http's. A handler that fails with
// Fail(&RemoteError{Code: "not_found", Message: "no such order"}) gives the
// caller's *RemoteError that Code, so callers can branch on it. A client
// or server that speaks version 1 or 2 sees no headers and no codes
// (docs/PROTOCOL.md section 23.4).
//
// WithInterceptor wraps every Call and Send of a Client: an Interceptor
// sees the call's CallInfo (its channel, the request headers it may
// change, the response headers after invoke) and its error. Handler
// middleware is plain Go, func(Handler) Handler. Package
// github.com/socketbus/socketbus/otel has one of each for OpenTelemetry:
// W3C trace context travels in the headers, and the handler's span is the
// caller's child, across the nodes of a bus too. This package does not
// link OpenTelemetry.
//
// # One request to every member
//
// Client.Gather sends one request to every other member of the channel
// present when the server accepts it, on every node of a bus, and returns
// one Reply per member as soon as the last one has its outcome: its
// response, its Fail (*RemoteError), that it left (ErrPeerGone) or that
// the deadline passed (ErrTimeout). GatherFunc hands over the replies as
// they arrive; Publish delivers to every member, wants no answer
// (Request.Published), and returns how many took it. Members receive a
// gathered request as any request, through Serve or Receive. The body
// streams once from the sender and fans out under per-member credit
// (docs/PROTOCOL.md section 24).
//
// # When the server goes away
//
// A Client reconnects by default (ReconnectPolicy: 60 attempts, jittered
// exponential backoff from 100 ms to 2 s, cycling through Dial's address
// and WithServers'), re-joining its channel with the same client ID, token
// and TLS configuration. Done and Err report the end only when it gives up
// (an error matching ErrDisconnected) or is closed (ErrClosed).
// WithConnectionHook reports each change: lost, draining, restored, gave
// up. What happens to each request when a connection is lost:
//
//   - Provably never seen by a receiver — its bytes never left the
//     process (the connection's writer had not taken it), the server
//     refused it with server_closed (refused, or dropped from the queue
//     by a server shutting down), it was written after the client read
//     the server's drain notice (the server refuses everything it reads
//     after sending the notice), or it was still open when a complete
//     drain ended the connection — it is sent again on the next
//     connection with the same request ID. That needs a body that can be
//     replayed: an io.Seeker (Call's []byte is one), or one that fitted
//     in the first frame. Otherwise the call fails with ErrNotDelivered,
//     and retrying it is safe.
//   - Anything else may have been seen by a receiver — acknowledged or
//     answered in part, or written before the drain notice to a server
//     whose drain was cut short or that went away without one (protocol
//     version 2 acknowledges nothing, and a write that failed may still
//     have put its bytes on the wire) — and it fails at once with
//     ErrDisconnected, never after waiting out its timeout, and is not
//     sent again: a request runs at most once whatever happens to the
//     server or the network. ErrDisconnected is distinct from ErrClosed
//     (your own Close) and ErrPeerGone (the other side left). The client
//     decides only once the lost connection's reader and writers have
//     stopped; docs/PROTOCOL.md section 17 states the rule, and a test
//     checks it over every order of the events involved.
//   - Held by this client as a receiver: its sender gets ErrPeerGone, and
//     the handler's Request.Context is cancelled with ErrDisconnected.
//   - Calls made while disconnected wait for the reconnection, bounded by
//     their context, as gRPC's wait-for-ready does. Receive calls waiting,
//     and Serve, carry on: their polls are made again on the new
//     connection.
//   - A no_peers refusal just after a reconnect is retried for a moment
//     (twice the policy's MaxDelay, at least a second): the channel's other
//     members may still be reconnecting.
//
// Server.Shutdown first refuses new requests, then tells every client that
// it is draining (a ping with a reserved request ID, docs/PROTOCOL.md
// section 17); then queued requests are answered with server_closed, so
// their senders re-send them on their next connection: another server in
// their list, or this one after its restart. New requests wait for that
// connection. A client with another server to go to (Dial's address and
// WithServers', more than one) opens it at once on the drain notice, as
// HTTP/2 and gRPC clients do on GOAWAY, and sends new requests there as
// soon as it has joined, skipping the draining server; Receive and Serve
// move their polls and push credit with it (what Serve was pushed and had
// not taken goes back to the draining server, which fails it at its
// sender to be re-sent). The draining connection stays open until its
// server closes it: responses to requests sent on it still arrive on it,
// and requests received from it are answered on it, so a slow request
// there holds up no new work. A client with one address waits for the
// draining connection to close, then reconnects. A planned
// restart therefore loses nothing, and runs nothing twice
// (TestReconnectNoLoss: 10,000 requests through five restarts between two
// servers). A Shutdown cut short by its context runs nothing twice either:
// what handlers held fails with ErrDisconnected. WithReconnect(
// ReconnectPolicy{MaxAttempts: -1}) turns all of this off: the client
// closes when its connection is lost, with an error matching
// ErrDisconnected; its calls that provably never reached a receiver fail
// with ErrNotDelivered instead, as do Sends made after that.
//
// # Security and limits
//
// server.Config holds TLS, an Authenticate hook for the token clients
// present with WithToken, and limits on connections, requests in flight,
// queues, frame and join times, keepalive and memory (MaxMemory, a
// ceiling no client can push the server past). SECURITY.md in the
// repository describes the threat model and each limit's default.
//
// # Several servers, one bus
//
// server.Config.Cluster makes a server a node of a bus of several, through
// NATS (package github.com/socketbus/socketbus/cluster, which this package
// does not import: a program that only uses the Client does not link
// NATS). A request is matched on its own node first, and offered to one
// node with a receiver waiting when none waits locally; exactly one node
// claims it, and streams, credit, timeouts and errors cross with the same
// promises as on one server (docs/PROTOCOL.md section 21).
//
// # Where things live
//
// This package is the client: client*.go (Client: dialling and
// reconnecting, sending, receiving, the frame handler), serve.go and
// call.go, request.go, stream.go (incoming bodies), body_writer.go and
// credit.go (outgoing bodies), header.go and call_options.go (headers,
// call options, interceptors), gather.go and client_gather.go (Gather,
// Publish), options.go and reconnect_options.go (Dial's options). Package
// server is the server; package cluster joins servers
// into one bus. internal/wire is the codec, internal/frameconn the framed
// connection, internal/router the routing state with no sockets,
// internal/budget the memory accounts, internal/testpeer the raw-protocol
// peer and helpers the tests share, internal/attack the attack suite,
// internal/heapsample the heap sampler of the tests' heap bounds. This
// package's tests check the client against a real server, grouped by
// what they check: roundtrip, semantics, edgecases, cancel, flow and
// slowconsumer (streams and flow control), hardening_* (hostile peers),
// serve and call, reconnect, chaos, gather. The server's own tests, its
// raw-frame hardening and fuzz targets included, are in package server.
package socketbus
