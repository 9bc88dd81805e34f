package socketbus

import (
	"fmt"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// handle is the reader goroutine's frame handler for connection cc: it
// demultiplexes frames by flags and request ID into the streams of Sends
// and received Requests on cc. It never blocks; a returned *wire.Error
// closes the connection after an error frame tells the server why.
func (c *Client) handle(cc *clientConn, f frame.Frame) error {
	h := &f.Header
	if h.Flags != 0 && h.ChannelID != c.channel {
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "frame for channel %x, this client joined %x", h.ChannelID, c.channel)
	}
	if h.ClientID != c.id && h.Flags != 0 {
		// Delivered frames name the other party; everything else names us.
		switch h.Flags {
		case wire.FlagReceive, wire.FlagResponse, wire.FlagResponse | wire.FlagAll, wire.FlagReceive | wire.FlagPublish:
		default:
			f.Release()
			return wire.Errorf(wire.CodeProtocol, "frame addressed to client %x, this is %x", h.ClientID, c.id)
		}
	}
	switch h.Flags {
	case wire.FlagRequest, wire.FlagRequest | wire.FlagCredit:
		return c.handleRequestFrame(cc, f)
	case wire.FlagResponse:
		return c.handleResponseFrame(cc, f)
	case wire.FlagReceive, wire.FlagReceive | wire.FlagPublish:
		return c.handleReceiveFrame(cc, f)
	case wire.FlagRequest | wire.FlagAll, wire.FlagRequest | wire.FlagAll | wire.FlagPublish, wire.FlagResponse | wire.FlagAll:
		return c.handleGatherFrame(cc, f)
	case wire.FlagResponse | wire.FlagCredit:
		defer f.Release()
		n, err := wire.ParseCredit(f.Payload)
		if err != nil {
			return err
		}
		if r := c.heldRequest(cc, h.RequestID); r != nil {
			r.window.add(int(n))
		}
		return nil
	case wire.FlagPing:
		if h.Type == wire.TypeStart {
			if h.RequestID == drainPingID {
				// The server refuses every request it reads from now
				// on: what the writer takes after this, no receiver sees.
				cc.noticed.Store(true)
				c.serverDraining(cc)
			}
			pong := f
			pong.Header.Type, pong.Header.Final = wire.TypeEnd, true
			pong.Header.ClientID = c.id
			_ = cc.conn.Enqueue(pong)
			return nil
		}
		f.Release()
		return nil
	case 0:
		defer f.Release()
		e, err := c.parseError(&f)
		if err != nil {
			return err
		}
		if e.Code == wire.CodeServerClosed {
			// The goodbye of a complete drain: the end of every request
			// the server read from us came before it.
			cc.goodbye.Store(true)
		}
		return fmt.Errorf("socketbus: server closed the connection: %w", errorFromWire(e))
	}
	f.Release()
	return wire.Errorf(wire.CodeProtocol, "unexpected %s frame with flags %s from the server", h.Type, h.Flags)
}

// sendCall returns the Send in flight on cc under request ID id, or nil:
// a frame read on another connection than the Send's is about an earlier
// attempt under the same ID, which has ended.
func (c *Client) sendCall(cc *clientConn, id ID) *sendCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	if call := c.sends[id]; call != nil && call.cc == cc {
		return call
	}
	return nil
}

// heldRequest returns the request received on cc under ID id that this
// client holds, or nil.
func (c *Client) heldRequest(cc *clientConn, id ID) *Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.held[id]; r != nil && r.cc == cc {
		return r
	}
	return nil
}

// handleRequestFrame handles acknowledgements, credit and errors for one
// of this client's Sends.
func (c *Client) handleRequestFrame(cc *clientConn, f frame.Frame) error {
	h := &f.Header
	call := c.sendCall(cc, h.RequestID)
	defer f.Release()
	if call == nil {
		return nil // the Send has returned; this was in flight
	}
	if h.Type != wire.TypeError {
		call.delivery.acked.Store(true) // the server has taken it
	}
	switch {
	case h.Flags.Has(wire.FlagCredit):
		n, err := wire.ParseCredit(f.Payload)
		if err != nil {
			return err
		}
		call.window.add(int(n))
	case h.Type == wire.TypeStart: // acknowledgement, maybe with credit
		if len(f.Payload) > 0 {
			n, err := wire.ParseCredit(f.Payload)
			if err != nil {
				return err
			}
			call.window.add(int(n))
		}
	case h.Type == wire.TypeEnd: // the whole body reached the server
	case h.Type == wire.TypeError:
		e, err := c.parseError(&f)
		if err != nil {
			return err
		}
		if e.Code == wire.CodeServerClosed {
			// Refused or dropped from the queue by a server that is
			// shutting down: no receiver saw it, so it goes again on the
			// next connection, or fails with ErrNotDelivered.
			call.delivery.refused.Store(true)
			if c.reconnects() {
				c.serverDraining(cc)
			}
			call.finish(verdictError(call.delivery.decide(c.reconnects() && call.replayable.Load()), errorFromWire(e)))
			return nil
		}
		if e.Code == wire.CodeNoPeers && call.replayable.Load() && c.peersMayBeReconnecting() {
			call.finish(errRetryHere)
			return nil
		}
		call.finish(errorFromWire(e))
	default:
		return wire.Errorf(wire.CodeProtocol, "unexpected %s frame for request %x", h.Type, h.RequestID)
	}
	return nil
}

// handleResponseFrame handles the response stream of one of this client's
// Sends, and errors for responses this client is writing.
func (c *Client) handleResponseFrame(cc *clientConn, f frame.Frame) error {
	h := &f.Header
	if h.Type == wire.TypeError {
		defer f.Release()
		e, err := c.parseError(&f)
		if err != nil {
			return err
		}
		if call := c.sendCall(cc, h.RequestID); call != nil {
			if len(e.Headers) > 0 {
				if _, err := call.setResponseHeader(e.Headers); err != nil {
					return err
				}
			}
			call.finish(errorFromWire(e))
		} else if r := c.heldRequest(cc, h.RequestID); r != nil {
			r.abort(errorFromWire(e)) // our response was refused
		}
		return nil
	}
	call := c.sendCall(cc, h.RequestID)
	if call == nil {
		f.Release()
		return nil
	}
	if call.gather != nil {
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "a plain response to gather %s: its replies come with the all flag", ID(h.RequestID))
	}
	call.delivery.answered.Store(true)
	if h.Type == wire.TypeStart {
		if h.Sequence != 0 || call.respStarted.Swap(true) {
			f.Release()
			return wire.Errorf(wire.CodeProtocol, "response start frame with sequence %d, or a second one", h.Sequence)
		}
		hlen := 0
		if c.opts.version >= wire.Version3 {
			n, err := call.setResponseHeader(f.Payload)
			if err != nil {
				f.Release()
				return err
			}
			hlen = n
		}
		if h.Final && c.opts.version >= wire.Version2 {
			// v2: the whole response in one frame (in v3 after its
			// header block, which the stream skips).
			return call.resp.pushWhole(f, hlen)
		}
		n := len(f.Payload)
		f.Release()
		if h.Final {
			return wire.Errorf(wire.CodeProtocol, "a whole response on a version %d connection", c.opts.version)
		}
		if n != hlen {
			return wire.Errorf(wire.CodeProtocol, "a response start frame with %d bytes after its header block", n-hlen)
		}
		return nil
	}
	if !call.respStarted.Load() {
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "%s frame of a response that has not started", h.Type)
	}
	return call.resp.push(f)
}

// handleReceiveFrame handles requests delivered to this client: their
// start, body and cancellation, and errors for its Receives.
func (c *Client) handleReceiveFrame(cc *clientConn, f frame.Frame) error {
	h := &f.Header
	if c.opts.version >= wire.Version2 && h.RequestID == (ID{}) {
		return c.handlePushFrame(cc, f)
	}
	switch h.Type {
	case wire.TypeStart:
		defer f.Release()
		return c.deliver(cc, h, f.Payload)
	case wire.TypeError:
		defer f.Release()
		e, err := c.parseError(&f)
		if err != nil {
			return err
		}
		if r := c.heldRequest(cc, h.RequestID); r != nil {
			r.abort(errorFromWire(e))
			return nil
		}
		c.mu.Lock()
		_, isPoll := c.polls[h.RequestID] // polls are made on the current connection
		isPoll = isPoll && c.conn.Load() == cc
		c.mu.Unlock()
		if isPoll {
			c.pollFailed(cc, h.RequestID, errorFromWire(e))
		}
		return nil
	}
	r := c.heldRequest(cc, h.RequestID)
	if r == nil {
		f.Release()
		return nil // answered or aborted already
	}
	return r.body.push(f)
}

// parseError decodes an error frame's payload in the layout of its
// version.
func (c *Client) parseError(f *frame.Frame) (*wire.Error, error) {
	return wire.ParseErrorVersion(f.Header.Version, f.Payload, wire.MaxHeaderBlock)
}
