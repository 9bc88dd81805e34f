package frameconn

import "github.com/socketbus/socketbus/internal/frame"

// Names that moved to package frame, kept for code written before it.
//
// Deprecated: use package frame.
type (
	Frame        = frame.Frame
	SentNotifier = frame.SentNotifier
	TakeNotifier = frame.TakeNotifier
	Memory       = frame.Memory
	Batch        = frame.Batch
)

// Functions that moved to package frame, kept for code written before it.
//
// Deprecated: use package frame.
var (
	GetBuffer  = frame.GetBuffer
	PutBuffer  = frame.PutBuffer
	BufferSize = frame.BufferSize
	FrameCost  = frame.Cost
	ErrorFrame = frame.ErrorFrame
)

// FrameOverhead moved to package frame.
//
// Deprecated: use frame.Overhead.
const FrameOverhead = frame.Overhead
