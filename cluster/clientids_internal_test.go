package cluster

import (
	"bytes"
	"testing"

	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestClaimCodec: claims and their answers decode as they were encoded,
// with a key hash or without, and every truncated prefix is refused.
func TestClaimCodec(t *testing.T) {
	channel, client := wire.ID{1, 2}, wire.ID{3, 4}
	for _, hash := range [][]byte{nil, router.KeyHash(bytes.Repeat([]byte{5}, router.KeySize))} {
		b := appendClaim(nil, 7, channel, client, hash)
		token, ch, id, got, err := parseClaim(b)
		if err != nil || token != 7 || ch != channel || id != client || !bytes.Equal(got, hash) {
			t.Fatalf("parseClaim(appendClaim(hash %x)) = %d %x %x %x %v", hash, token, ch, id, got, err)
		}
		for n := range len(b) {
			if _, _, _, _, err := parseClaim(b[:n]); err == nil {
				t.Fatalf("a claim cut to %d of %d bytes: no error", n, len(b))
			}
		}
	}
	for _, refused := range []bool{false, true} {
		b := appendClaimed(nil, 9, refused)
		token, got, err := parseClaimed(b)
		if err != nil || token != 9 || got != refused {
			t.Fatalf("parseClaimed(appendClaimed(%v)) = %d %v %v", refused, token, got, err)
		}
		for n := range len(b) {
			if _, _, err := parseClaimed(b[:n]); err == nil {
				t.Fatalf("an answer cut to %d of %d bytes: no error", n, len(b))
			}
		}
	}
}
