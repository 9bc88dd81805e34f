package testpeer

import (
	"io"
	"math/rand/v2"
)

// PatternReader generates n pseudo-random bytes on the fly from seed, so a
// body of any size exists without being held in memory.
type PatternReader struct {
	rng  *rand.ChaCha8
	left int64
}

// NewPattern returns a reader of n bytes generated from seed.
func NewPattern(seed uint64, n int64) *PatternReader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return &PatternReader{rng: rand.NewChaCha8(s), left: n}
}

// Read implements io.Reader.
func (p *PatternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.rng.Read(b)
	p.left -= int64(n)
	return n, nil
}
