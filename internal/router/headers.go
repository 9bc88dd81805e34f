package router

import (
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Headers (protocol v3, docs/PROTOCOL.md "Version 3"). A v3 start frame of
// a request, a delivery or a response carries a header block first (after
// a delivery's receive ID), and a v3 error frame an application code and a
// header block. The router checks every block it reads, so that no
// receiver is handed one it would refuse, and keeps a request's block
// encoded, as it came, until the request is delivered: to a v3 receiver
// with it, to a v1 or v2 receiver without it (that receiver never asked
// for headers). A block over Config.MaxHeaderBytes is refused with
// too_large for its request only.
//
// Memory: a request's block is charged to its sender's account from its
// admission to its end. A response's block is not kept: it goes on in the
// frame it came in (or, for a v1 or v2 sender, not at all).

// DefaultMaxHeaderBytes is Config.MaxHeaderBytes's default.
const DefaultMaxHeaderBytes = 16 << 10

// maxHeaderBytes is the largest header block (without its length prefix)
// a stream may carry.
func (c *Config) maxHeaderBytes() int {
	if c.MaxHeaderBytes <= 0 {
		return DefaultMaxHeaderBytes
	}
	return min(c.MaxHeaderBytes, wire.MaxHeaderBlock)
}

// v3 reports whether the member speaks protocol version 3.
func (m *Member) v3() bool { return m.version >= wire.Version3 }

// headerBlockLen returns how many bytes the header block at the front of a
// start frame's payload p takes, its length prefix included (0 for a v1
// or v2 member, whose start frames have none), whether it is over the
// server's bound (then its fields are not checked), and a protocol error
// for a block that is truncated or malformed.
func (m *Member) headerBlockLen(p []byte) (n int, tooLarge bool, err error) {
	if !m.v3() {
		return 0, false, nil
	}
	n, err = wire.HeaderBlockLen(p)
	if err != nil {
		return 0, false, err
	}
	if n-wire.HeaderBlockLenSize > m.r.cfg.maxHeaderBytes() {
		return n, true, nil
	}
	if _, err := wire.CheckHeaderBlock(p[:n], wire.MaxHeaderBlock); err != nil {
		return 0, false, err
	}
	return n, false, nil
}

// headersFor returns the header block to put in a start frame for member
// to: block (wire.NoHeaders when nil) for a v3 member, nothing for others.
func headersFor(to *Member, block []byte) []byte {
	switch {
	case !to.v3():
		return nil
	case len(block) == 0:
		return wire.NoHeaders
	}
	return block
}

// cutFront removes the first n bytes of a pooled payload in place, so that
// the buffer keeps its capacity (the pool knows buffers by it).
func cutFront(p []byte, n int) []byte {
	if n == 0 {
		return p
	}
	return p[:copy(p, p[n:])]
}

// keepRequestHeadersLocked keeps a request's header block (its length
// prefix included; nothing when it is empty), charged to the sender's
// account, and reports false when the account cannot take it.
func (ch *channel) keepRequestHeadersLocked(req *request, block []byte) bool {
	if len(block) <= wire.HeaderBlockLenSize {
		return true
	}
	cost := int64(frameOverhead + len(block))
	if !req.sender.acct.TryCharge(cost) {
		return false
	}
	req.headers = append([]byte(nil), block...)
	req.headersCost = cost
	return true
}

// releaseRequestHeadersLocked gives back what a request's header block is
// charged.
func (ch *channel) releaseRequestHeadersLocked(req *request) {
	if req.headersCost > 0 {
		req.sender.acct.Release(req.headersCost)
		req.headersCost = 0
	}
	req.headers = nil
}

// parseError decodes the payload of an error frame f from m, in the
// layout of f's version, bounding a v3 header block by the server's
// bound: a larger one is a *wire.Error with code too_large.
func (m *Member) parseError(f *frame.Frame) (*wire.Error, error) {
	limit := m.r.cfg.maxHeaderBytes()
	if m.remote != 0 {
		limit = wire.MaxHeaderBlock // the other node has bounded it by its own limit
	}
	return wire.ParseErrorVersion(f.Header.Version, f.Payload, limit)
}

// remoteFailure is what a receiver's Fail carries to the requester
// besides its message (v3): the application code and the response's
// header block.
type remoteFailure struct {
	appCode string
	headers []byte
}

// errorFrameTo builds the error frame failWithLocked sends to a request's
// sender: for a Fail, with its application code and headers when the
// sender speaks v3.
func (ch *channel) errorFrameTo(s *Member, req *request, flags wire.Flags, code wire.Code, msg string) frame.Frame {
	h := header(ch, s, wire.TypeError, flags, req.id)
	e := wire.Error{Code: code, Message: msg}
	if code == wire.CodeRemote && req.failure != nil && s.v3() {
		e.AppCode, e.Headers = req.failure.appCode, req.failure.headers
	}
	return frame.ErrorFrameOf(h, e)
}

// remoteFailLocked ends req with the receiver's Fail e: its message, and
// for a v3 sender its application code and response headers.
func (ch *channel) remoteFailLocked(req *request, e *wire.Error) {
	if e.AppCode != "" || len(e.Headers) > 0 {
		req.failure = &remoteFailure{appCode: e.AppCode, headers: e.Headers}
	}
	ch.failLocked(req, wire.CodeRemote, relayedMessage(e.Message))
}
