package router

// A request's state: where it is in its life, as docs/PROTOCOL.md section
// 15.1 names it. The section's two tables — what the server does with each
// frame in each state, and how a request moves between states — are
// checked against reqState and reqMoves by state_internal_test.go and
// states_test.go, so the type, the protocol and the tests say the same.

import "fmt"

// reqState is where a request is in its life. It changes only through
// request.to, which allows the moves in reqMoves and no other. The stream
// flags of each direction (relay.ended, relay.endForwarded) are not part
// of it: a body may end in any state but unknown and ended.
type reqState uint8

const (
	// reqUnknown: never started (the zero value, before startRequestLocked
	// opens it).
	reqUnknown reqState = iota
	// reqQueued: started, and no receiver holds it: it waits in the
	// channel's queue, or is on its way to a receiver.
	reqQueued
	// reqPushed: a receiver holds it through push credit (or another node
	// was offered it) and has not taken it yet: it may give it back.
	reqPushed
	// reqDelivered: a receiver holds it, handed to a poll or pushed and
	// taken, and has not started its response.
	reqDelivered
	// reqResponding: its receiver has started the response.
	reqResponding
	// reqEnded: it completed, failed or was cancelled, and is out of every
	// table; late callbacks (its timer, a writer's notice) find it ended.
	reqEnded

	numReqStates
)

// reqStateNames are the states' names in docs/PROTOCOL.md section 15.1.
var reqStateNames = [numReqStates]string{
	reqUnknown:    "unknown",
	reqQueued:     "queued",
	reqPushed:     "pushed, not taken",
	reqDelivered:  "delivered",
	reqResponding: "responding",
	reqEnded:      "ended",
}

func (s reqState) String() string {
	if s < numReqStates {
		return reqStateNames[s]
	}
	return fmt.Sprintf("reqState(%d)", uint8(s))
}

// reqMove is a change of state a request may make, and what makes it.
type reqMove struct {
	from, to reqState
	when     string
}

// reqMoves are the moves a request may make, in the order of section
// 15.1's table of moves. Every path that ends a request moves it to
// reqEnded (finishLocked); an ended request moves no more.
var reqMoves = []reqMove{
	{reqUnknown, reqQueued, "its sender starts it"},
	{reqQueued, reqPushed, "pushed to a receiver's push credit, or offered to another node"},
	{reqQueued, reqDelivered, "handed to a receiver's poll"},
	{reqQueued, reqEnded, "cancelled, timed out, failed for want of peers or by the shutdown, or given back to the node it came from"},
	{reqPushed, reqQueued, "returned by its receiver (or the node it was offered to), back to the queue's head"},
	{reqPushed, reqDelivered, "taken: its receiver grants credit for its body, starts its response or fails it"},
	{reqPushed, reqEnded, "cancelled, timed out, refused as too large, its receiver or sender gone, or returned too many times"},
	{reqDelivered, reqResponding, "its receiver starts its response"},
	{reqDelivered, reqEnded, "cancelled, timed out, failed by its receiver, refused as too large, or its receiver or sender gone"},
	{reqResponding, reqEnded, "the response's end reaches the sender's connection, or the request fails"},
}

// reqCanMove[from][to] says whether reqMoves has that move.
var reqCanMove = func() (can [numReqStates][numReqStates]bool) {
	for _, mv := range reqMoves {
		can[mv.from][mv.to] = true
	}
	return can
}()

// to moves req to state s. A move reqMoves does not have is a bug in the
// router, not bad input, and panics.
func (req *request) to(s reqState) {
	if s >= numReqStates || !reqCanMove[req.state][s] {
		panic(fmt.Sprintf("router: request %x may not move from %s to %s", req.id, req.state, s))
	}
	req.state = s
}
