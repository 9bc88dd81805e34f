package wire

// Flow-control windows of protocol v1, in bytes. docs/PROTOCOL.md explains
// the credit scheme.
//
// StreamWindow was chosen by measurement: BenchmarkTransfer256MiB (one
// 256 MiB body through a loopback server, 2 cores, medians of 3 runs of 5)
// gave 909 MB/s at 64 KiB, 1322 at 128 KiB, 1635 at 256 KiB, 1547 at
// 512 KiB and 1170 at 1 MiB. Below 256 KiB the sender idles waiting for
// credit; above it, more bytes in flight only cost cache and memory.
const (
	// StreamWindow is the most unacknowledged bytes a receiving side allows
	// per stream, and the initial credit on every hop except the first.
	StreamWindow = 256 << 10

	// InitialRequestCredit is the credit a sender has for a new request body
	// before the server grants more: enough for small requests to go out in
	// one write, small enough that queued requests hold little.
	InitialRequestCredit = 16 << 10
)
