// Package frame is what every layer of socketbus passes around: the Frame
// (a header and its payload), the size-class pool its payloads come from,
// and the one rule that says who gives a payload back.
//
// # Ownership
//
// A pooled payload (Frame.Pooled) has exactly one owner at a time: whoever
// holds the Frame. Handing the Frame on hands the buffer over with it —
// to a connection's writer (frameconn's Enqueue), to a router Peer's Send,
// to a handler the reader calls — and the giver must not touch the payload
// again. The last holder calls Release once: the writer after it has
// written the frame or dropped it, a handler for a frame it was handed and
// did not pass on, the router for a frame it consumed. Release clears the
// Frame, so releasing the same variable twice is harmless; a copy of a
// Frame is not a second owner, and only one copy may be released.
//
// Whoever keeps a payload beyond the call that handed it over (a body
// held for a slow reader, a retained copy for a return) keeps the Frame,
// and with it the duty to release it.
//
// # The test mode
//
// Track(true), called in a TestMain, makes PutBuffer panic on a buffer it
// did not hand out or that was already given back, and Outstanding count
// the buffers out: a test suite ends with Outstanding() == 0.
// OutstandingStacks says where the buffers still out were taken.
// frametest.Main is that TestMain; the suites of the root package,
// server, cluster, internal/router and internal/frameconn run under it.
//
// # Where things live
//
// frame.go has Frame, its notifiers and cost, and Batch; pool.go the
// size classes, Release and the test mode.
package frame
