package frameconn

import "sync"

// Payload buffers come from size-classed pools so that relaying a frame
// allocates nothing in the steady state. A buffer handed to Enqueue with
// Frame.Pooled set returns to its pool once the writer has written it.
var bufferClasses = [...]int{512, 4 << 10, 16 << 10, 64 << 10}

var bufferPools [len(bufferClasses)]sync.Pool

// GetBuffer returns a slice of length n whose backing array comes from a
// pool. n must not exceed wire.MaxFramePayload.
func GetBuffer(n int) []byte {
	for i, size := range bufferClasses {
		if n <= size {
			if p, ok := bufferPools[i].Get().(*[]byte); ok {
				return (*p)[:n]
			}
			return make([]byte, n, size)
		}
	}
	panic("frameconn: buffer request over the largest class")
}

// PutBuffer returns a buffer obtained from GetBuffer to its pool. Buffers
// whose capacity is not a class size are left to the garbage collector.
func PutBuffer(b []byte) {
	c := cap(b)
	for i, size := range bufferClasses {
		if c == size {
			b = b[:0]
			bufferPools[i].Put(&b)
			return
		}
	}
}
