package router

import (
	"time"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Config holds the limits the router enforces. Zero values mean "no limit"
// except where a field says otherwise; the server fills in its defaults.
type Config struct {
	DefaultTimeout              time.Duration // for requests whose timeout is 0; must be > 0
	MaxMessageBytes             int64         // largest request or response body; 0 = no limit
	MaxChannelQueueBytes        int64         // credit granted to queued request bodies per channel
	MaxQueuedRequestsPerChannel int           // 0 = no limit
	MaxInFlightPerClient        int           // requests a client may have open as sender; 0 = no limit
	MaxPollsPerClient           int           // Receive calls a client may have waiting, plus requests it holds; 0 = no limit
	Window                      int           // the most credit per stream on a connection's hop; 0 = wire.StreamWindow (implicit credit is always wire.StreamWindow)
	MaxHeaderBytes              int           // largest header block (v3); 0 = DefaultMaxHeaderBytes, at most wire.MaxHeaderBlock
	MaxGatherMembers            int           // members one gather or publish may reach; 0 = GatherMembers

	// Memory is the server's root memory account (nil = unlimited):
	// streams charge what they may come to hold to their upstream
	// member's account, a child of its channel's. MemoryPerChannel and
	// MemoryPerMember are those accounts' shares (0 = none of their own).
	Memory           *budget.Account
	MemoryPerChannel int64
	MemoryPerMember  int64
}

// tombstoneLimit is how many ended request IDs a member whose pongs do not
// come back is remembered for: every request it may have open at once as
// sender and as receiver, twice over.
func (c Config) tombstoneLimit() int {
	return max(1024, 2*(c.MaxInFlightPerClient+c.MaxPollsPerClient))
}

// Peer is a joined connection as the router sees it.
type Peer interface {
	// Send queues f for the connection's writer. It must not block and must
	// take ownership of f's payload even when the connection is closed.
	// With a non-nil batch the writer is woken when the batch is flushed
	// (at the end of the reader's current burst of frames) rather than at
	// once, so that frames for one connection go out in one write.
	Send(f frame.Frame, batch *frame.Batch)
}

// Outcome is how a request ended, for the server's counters.
type Outcome int

// The outcomes a request can have.
const (
	OutcomeCompleted   Outcome = iota // the response reached the sender's connection
	OutcomeRemoteError                // the receiver called Fail
	OutcomeTimeout
	OutcomeCancelled // the sender cancelled or its body reader failed
	OutcomePeerGone
	OutcomeNoPeers
	OutcomeTooLarge
	OutcomeServerClosed
	OutcomeRejected // refused by a limit
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"completed", "remote_error", "timeout", "cancelled", "peer_gone",
	"no_peers", "too_large", "server_closed", "rejected",
}

// String returns the outcome's snake_case name.
func (o Outcome) String() string {
	if o >= 0 && o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Outcomes lists every outcome, in order.
func Outcomes() []Outcome {
	out := make([]Outcome, numOutcomes)
	for i := range out {
		out[i] = Outcome(i)
	}
	return out
}

func outcomeOf(code wire.Code) Outcome {
	switch code {
	case wire.CodeTimeout:
		return OutcomeTimeout
	case wire.CodeCancelled, wire.CodeAborted:
		return OutcomeCancelled
	case wire.CodePeerGone:
		return OutcomePeerGone
	case wire.CodeNoPeers:
		return OutcomeNoPeers
	case wire.CodeTooLarge:
		return OutcomeTooLarge
	case wire.CodeServerClosed:
		return OutcomeServerClosed
	case wire.CodeRemote:
		return OutcomeRemoteError
	}
	return OutcomeRejected
}
