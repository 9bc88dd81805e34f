package socketbus_test

import (
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
)

// patternReader generates n pseudo-random bytes on the fly from seed, so a
// body of any size exists without being held in memory.
type patternReader struct {
	rng  *rand.ChaCha8
	left int64
}

func newPattern(seed uint64, n int64) *patternReader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return &patternReader{rng: rand.NewChaCha8(s), left: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
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

// patternSum returns the SHA-256 of the pattern newPattern(seed, n) yields.
func patternSum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, newPattern(seed, n))
	return sum(h)
}

func sum(h hash.Hash) [32]byte {
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// hashWriter hashes what is written to it and counts the bytes.
type hashWriter struct {
	h hash.Hash
	n int64
}

func newHashWriter() *hashWriter { return &hashWriter{h: sha256.New()} }

func (w *hashWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return w.h.Write(b)
}
