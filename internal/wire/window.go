package wire

// Flow-control windows of protocol v1, in bytes. docs/PROTOCOL.md explains
// the credit scheme and how these sizes were chosen.
const (
	// StreamWindow is the most unacknowledged bytes a receiving side allows
	// per stream, and the initial credit on every hop except the first.
	StreamWindow = 256 << 10

	// InitialRequestCredit is the credit a sender has for a new request body
	// before the server grants more: enough for small requests to go out in
	// one write, small enough that queued requests hold little.
	InitialRequestCredit = 16 << 10
)
