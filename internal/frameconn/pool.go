package frameconn

import "sync"

// Payload buffers come from size-classed pools so that relaying a frame
// allocates nothing in the steady state. A buffer handed to Enqueue with
// Frame.Pooled set returns to its pool once the writer has written it.
//
// The pools hold pointers to arrays, not slices: converting a full-capacity
// slice back to its array pointer is free, so putting a buffer back does
// not allocate a slice header the way pooling *[]byte does.
var (
	pool512 = sync.Pool{New: func() any { return new([512]byte) }}
	pool4k  = sync.Pool{New: func() any { return new([4 << 10]byte) }}
	pool16k = sync.Pool{New: func() any { return new([16 << 10]byte) }}
	pool64k = sync.Pool{New: func() any { return new([64 << 10]byte) }}
)

// GetBuffer returns a slice of length n whose backing array comes from a
// pool. n must not exceed wire.MaxFramePayload.
func GetBuffer(n int) []byte {
	switch {
	case n <= 512:
		return pool512.Get().(*[512]byte)[:n]
	case n <= 4<<10:
		return pool4k.Get().(*[4 << 10]byte)[:n]
	case n <= 16<<10:
		return pool16k.Get().(*[16 << 10]byte)[:n]
	case n <= 64<<10:
		return pool64k.Get().(*[64 << 10]byte)[:n]
	}
	panic("frameconn: buffer request over the largest class")
}

// PutBuffer returns a buffer obtained from GetBuffer to its pool. Buffers
// whose capacity is not a class size are left to the garbage collector.
func PutBuffer(b []byte) {
	switch cap(b) {
	case 512:
		pool512.Put((*[512]byte)(b[:512]))
	case 4 << 10:
		pool4k.Put((*[4 << 10]byte)(b[:4<<10]))
	case 16 << 10:
		pool16k.Put((*[16 << 10]byte)(b[:16<<10]))
	case 64 << 10:
		pool64k.Put((*[64 << 10]byte)(b[:64<<10]))
	}
}
