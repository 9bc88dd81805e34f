package socketbus_test

import (
	"crypto/sha256"
	"hash"
	"io"

	"github.com/socketbus/socketbus/internal/testpeer"
)

// patternSum returns the SHA-256 of the pattern testpeer.NewPattern(seed, n) yields.
func patternSum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, testpeer.NewPattern(seed, n))
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
