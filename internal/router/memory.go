package router

import (
	"slices"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Memory. A relay is charged, to the account of the member that sends it
// (the sender for a request body, the receiver for a response), for the
// most memory its window can come to hold: relayCost of the bytes it has
// granted upstream and not yet received, holds, and has queued for the
// downstream socket. The charge is taken before credit is granted or a
// request admitted — TryCharge, so a short budget refuses new requests
// with limit and holds grants back — and shrinks as bytes leave.
//
// relayCost bounds real memory, not payload bytes, because every frame a
// relay keeps passes through keepLocked, which holds each byte at less than
// 3/2 of a byte of memory:
//   - a chunk under smallChunk is copied into the coalescing buffer at the
//     tail of the relay's pending frames, or a new one of coalesceSize, so
//     coalesced chunks fill at least 3/4 of their buffer;
//   - a larger chunk keeps the buffer it was read into (a power-of-two
//     class, see frameconn's pool) when that wastes at most a quarter of
//     it, and is otherwise copied into buffers of the powers of two that
//     its length is made of, which waste nothing;
//   - every frame costs frameOverhead besides its buffer, at most 16% of a
//     smallChunk;
//   - a chunk whose buffer is less than 3/4 full is forwarded only while
//     none of the relay's bytes wait in the downstream's write queue, so at
//     most one such buffer is queued for a socket, and at most one more is
//     being filled: relayOverhead covers both.
const (
	smallChunk    = 1 << 10
	coalesceSize  = 4 << 10
	frameOverhead = 160
	relayOverhead = 2*coalesceSize + 2*frameOverhead
)

// relayCost is what a relay is charged for a window use of b bytes.
func relayCost(b int) int64 {
	if b <= 0 {
		return 0
	}
	return int64(b) + int64(b)/2 + relayOverhead
}

// payer returns the member whose account pays for one relay of req.
func (req *request) payer(response bool) *Member {
	if response {
		return req.receiver
	}
	return req.sender
}

// windowInUse is the part of a relay's window that can hold memory: credit
// granted upstream and not used (until the stream's end frame arrives),
// bytes pending and bytes queued for the downstream socket.
func (rl *relay) windowInUse(extra int) int {
	n := rl.pendingBytes + int(rl.inFlight.Load()) + extra
	if !rl.ended {
		n += rl.upOutstanding
	}
	return n
}

// commitLocked charges req's relay for its window use plus extra bytes of
// credit about to be granted. It reports false, charging nothing, when the
// payer's account cannot take it. Shrinking always succeeds.
func (ch *channel) commitLocked(req *request, response bool, extra int) bool {
	rl := req.relay(response)
	want := relayCost(rl.windowInUse(extra))
	acct := req.payer(response).acct
	switch {
	case want > rl.charged:
		if !acct.TryCharge(want - rl.charged) {
			return false
		}
	case want < rl.charged:
		acct.Release(rl.charged - want)
	}
	rl.charged = want
	return true
}

// chargeLocked charges req's relay for its window use whatever the limits.
func (ch *channel) chargeLocked(req *request, response bool) {
	rl := req.relay(response)
	if want := relayCost(rl.windowInUse(0)); want > rl.charged {
		req.payer(response).acct.Charge(want - rl.charged)
		rl.charged = want
	}
}

// shrinkLocked releases whatever of a relay's charge its window no longer
// needs.
func (ch *channel) shrinkLocked(req *request, response bool) {
	rl := req.relay(response)
	if want := relayCost(rl.windowInUse(0)); want < rl.charged {
		req.payer(response).acct.Release(rl.charged - want)
		rl.charged = want
	}
}

// releaseChargesLocked returns everything req's relays are charged for.
func (ch *channel) releaseChargesLocked(req *request) {
	for _, response := range []bool{false, true} {
		rl := req.relay(response)
		if rl.charged > 0 {
			req.payer(response).acct.Release(rl.charged)
			rl.charged = 0
		}
	}
	ch.r.memoryFreed()
}

// keepLocked appends a chunk or end frame to a relay's pending frames, so
// that it holds less than 3/2 of its payload in memory (see relayCost).
func (rl *relay) keepLocked(f *frame.Frame) {
	n := len(f.Payload)
	if f.Header.Type != wire.TypeChunk || n == 0 || (n >= smallChunk && 4*n >= 3*cap(f.Payload)) {
		rl.pending = append(rl.pending, take(f))
		return
	}
	// Copy it. f's own buffer is released by Handle.
	rl.pending = appendCopies(rl.pending, f.Header, f.Payload)
}

// appendCopies appends chunks holding a copy of p to pending: the large
// part in power-of-two pieces, each filling its buffer, the rest coalesced
// into pending's last chunk when it has room, or into a buffer of its own.
func appendCopies(pending []frame.Frame, h wire.Header, p []byte) []frame.Frame {
	for len(p) >= smallChunk {
		size := smallChunk
		for size*2 <= len(p) {
			size *= 2
		}
		buf := frame.GetBuffer(size)
		copy(buf, p)
		pending = append(pending, frame.Frame{Header: h, Payload: buf, Pooled: true})
		p = p[size:]
	}
	if len(p) == 0 {
		return pending
	}
	if k := len(pending); k > 0 {
		last := &pending[k-1]
		if last.Header.Type == wire.TypeChunk && len(last.Payload) > 0 && cap(last.Payload)-len(last.Payload) >= len(p) {
			last.Payload = append(last.Payload, p...)
			return pending
		}
	}
	buf := append(frame.GetBuffer(coalesceSize)[:0], p...)
	return append(pending, frame.Frame{Header: h, Payload: buf, Pooled: true})
}

// splitLocked cuts the chunk rl.pending[i] after its first k bytes. Each
// part is copied as keepLocked copies a chunk, so that what the relay holds
// stays under 3/2 of its payload, and the original's buffer is released.
func (rl *relay) splitLocked(i, k int) {
	f := &rl.pending[i]
	parts := appendCopies(nil, f.Header, f.Payload[:k])
	parts = append(parts, appendCopies(nil, f.Header, f.Payload[k:])...)
	f.Release()
	rl.pending = slices.Replace(rl.pending, i, i+1, parts...)
}

// starveLocked records that a grant for req was held back for memory.
func (ch *channel) starveLocked(req *request, response bool) {
	rl := req.relay(response)
	if rl.memStarved {
		return
	}
	rl.memStarved = true
	ch.memWait = append(ch.memWait, req)
	r := ch.r
	r.starveMu.Lock()
	if r.starved == nil {
		r.starved = make(map[*channel]struct{})
	}
	r.starved[ch] = struct{}{}
	r.starvedN.Store(int64(len(r.starved)))
	r.starveMu.Unlock()
}

// memoryFreed is called whenever memory goes back to the budget: if grants
// are waiting for memory, a goroutine (one at a time) retries them.
func (r *Router) memoryFreed() {
	if r.starvedN.Load() == 0 {
		return
	}
	r.freed.Store(true)
	if r.retrying.CompareAndSwap(false, true) {
		go r.retryStarved()
	}
}

func (r *Router) retryStarved() {
	for {
		for r.freed.Swap(false) {
			r.retryStarvedOnce()
		}
		r.retrying.Store(false)
		// Memory freed after the last pass and before retrying was
		// cleared would be missed: look once more.
		if !r.freed.Load() || !r.retrying.CompareAndSwap(false, true) {
			return
		}
	}
}

func (r *Router) retryStarvedOnce() {
	r.starveMu.Lock()
	chans := make([]*channel, 0, len(r.starved))
	for ch := range r.starved {
		chans = append(chans, ch)
	}
	clear(r.starved)
	r.starvedN.Store(0)
	r.starveMu.Unlock()
	for _, ch := range chans {
		ch.mu.Lock()
		wait := ch.memWait
		ch.memWait = nil
		for _, req := range wait {
			for _, response := range []bool{false, true} {
				if rl := req.relay(response); rl.memStarved {
					rl.memStarved = false
					if req.state != reqEnded {
						ch.pumpLocked(req, response)
					}
				}
			}
		}
		ch.mu.Unlock()
	}
}
