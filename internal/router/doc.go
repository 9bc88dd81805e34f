// Package router is socketbus's routing state, kept apart from sockets so it
// can be tested with fake peers: which clients are joined to which channel,
// each channel's FIFO of queued requests and of waiting receivers, which
// member holds which request, per-stream flow control and timeouts.
//
// The server's per-connection reader goroutine calls Member.Handle with each
// frame; the router answers by handing frames to Peers, which must never
// block (they queue for the connection's writer goroutine).
//
// Ownership of payloads follows package frame's one rule: a frame has one
// owner at a time, handing it on hands its buffer over, and whoever holds
// it last releases it, once. Member.Handle and Member.HandleRemote own the
// frame they are given: a handler that keeps the payload moves it out with
// take (frames.go), and whatever is left in the frame when the handler
// returns is released there, on every path. A frame the router builds or
// keeps goes to exactly one Peer.Send (channel.send), which owns it from
// then on, or is released where the router stops needing it. Those places
// are:
//
//   - finishLocked (relay.go): the body and response frames still pending
//     when a request ends;
//   - assignLocked (relay.go): the pending body frames a v2 whole delivery
//     copied into its start frame (a pushed request keeps them instead);
//   - dropRetainedLocked (push.go): a pushed request's kept copies, once
//     a receiver takes it or it ends;
//   - remoteToSenderLocked (remote.go): a link frame whose body it moved
//     to a buffer of its own;
//   - in gather.go, fanOutLocked: each frame of a gather's body, once
//     copied to every member; feedChildLocked: what keepLocked copied
//     rather than kept; toSenderLocked: a reply nobody reads (its sender
//     gone, or a publish's).
//
// A request's state is a type, reqState (state.go): unknown, queued,
// pushed (not taken), delivered, responding, ended, changed only through
// request.to along reqMoves, which panics at any other move.
// docs/PROTOCOL.md section 15.1 lists the same states and moves, and what
// the server does with each frame in each state; state_internal_test.go
// and states_test.go check the section against the type and the code.
//
// Locking: each channel has one mutex guarding the channel, its members'
// request tables and every request on it. Methods that need it held are
// named ...Locked. Peer.Send is called with the channel lock held, so a
// Peer must not call back into the router synchronously.
//
// The lock order, never the other way round:
//
//	Router.mu → a channel's lock → Router.starveMu
//	a channel's lock → whatever a Peer's Send, the Observer or the memory budget's hooks take
//
// Router.mu guards the channel table and the departed clients' keys; Join,
// Leave and Claimed take a channel's lock under it, and nothing takes
// Router.mu with a channel's lock held. At most one channel's lock is held
// at a time: what walks several channels (Stats, Channels, Close, the
// retry of grants held back for memory) copies the list under Router.mu,
// lets go of it, then locks each channel in turn. What is called with a
// channel's lock held must not call the router, and takes only locks of
// its own that nothing holds while calling the router: a connection's
// queue (frameconn), package cluster's outbox and its dirty set (the
// Observer), the budget's atomic counters. A frame's write notification
// (frame.Frame.Sent) takes the channel's lock, so a Peer's writer calls it
// holding no lock that anything takes under a channel's lock (its queue's,
// the outbox's).
//
// Package cluster holds its node lock (cluster.Cluster.mu) while it calls
// the router (JoinRemote, HandleRemote, Leave, Claimed and the like), so
// its lock comes before all of these; its package doc has the whole order.
package router
