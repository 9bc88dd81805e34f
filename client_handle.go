package socketbus

import (
	"fmt"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// handle is the reader goroutine's frame handler: it demultiplexes frames
// by flags and request ID into the streams of Sends and received Requests.
// It never blocks; a returned *wire.Error closes the connection after an
// error frame tells the server why.
func (c *Client) handle(f frame.Frame) error {
	h := &f.Header
	if h.Flags != 0 && h.ChannelID != c.channel {
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "frame for channel %x, this client joined %x", h.ChannelID, c.channel)
	}
	if h.ClientID != c.id && h.Flags != 0 {
		// Delivered frames name the other party; everything else names us.
		if h.Flags != wire.FlagReceive && h.Flags != wire.FlagResponse {
			f.Release()
			return wire.Errorf(wire.CodeProtocol, "frame addressed to client %x, this is %x", h.ClientID, c.id)
		}
	}
	switch h.Flags {
	case wire.FlagRequest, wire.FlagRequest | wire.FlagCredit:
		return c.handleRequestFrame(f)
	case wire.FlagResponse:
		return c.handleResponseFrame(f)
	case wire.FlagReceive:
		return c.handleReceiveFrame(f)
	case wire.FlagResponse | wire.FlagCredit:
		defer f.Release()
		n, err := wire.ParseCredit(f.Payload)
		if err != nil {
			return err
		}
		if r := c.heldRequest(h.RequestID); r != nil {
			r.window.add(int(n))
		}
		return nil
	case wire.FlagPing:
		if h.Type == wire.TypeStart {
			if h.RequestID == drainPingID {
				// The server refuses every request it reads from now
				// on: what the writer takes after this, no receiver sees.
				c.noticed.Store(true)
				c.serverDraining()
			}
			pong := f
			pong.Header.Type, pong.Header.Final = wire.TypeEnd, true
			pong.Header.ClientID = c.id
			_ = c.conn.Load().Enqueue(pong)
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
			c.goodbye.Store(true)
		}
		return fmt.Errorf("socketbus: server closed the connection: %w", errorFromWire(e))
	}
	f.Release()
	return wire.Errorf(wire.CodeProtocol, "unexpected %s frame with flags %s from the server", h.Type, h.Flags)
}

func (c *Client) sendCall(id ID) *sendCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sends[id]
}

func (c *Client) heldRequest(id ID) *Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[id]
}

// handleRequestFrame handles acknowledgements, credit and errors for one
// of this client's Sends.
func (c *Client) handleRequestFrame(f frame.Frame) error {
	h := &f.Header
	call := c.sendCall(h.RequestID)
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
				c.serverDraining()
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
func (c *Client) handleResponseFrame(f frame.Frame) error {
	h := &f.Header
	if h.Type == wire.TypeError {
		defer f.Release()
		e, err := c.parseError(&f)
		if err != nil {
			return err
		}
		if call := c.sendCall(h.RequestID); call != nil {
			if len(e.Headers) > 0 {
				if _, err := call.setResponseHeader(e.Headers); err != nil {
					return err
				}
			}
			call.finish(errorFromWire(e))
		} else if r := c.heldRequest(h.RequestID); r != nil {
			r.abort(errorFromWire(e)) // our response was refused
		}
		return nil
	}
	call := c.sendCall(h.RequestID)
	if call == nil {
		f.Release()
		return nil
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
func (c *Client) handleReceiveFrame(f frame.Frame) error {
	h := &f.Header
	if c.opts.version >= wire.Version2 && h.RequestID == (ID{}) {
		return c.handlePushFrame(f)
	}
	switch h.Type {
	case wire.TypeStart:
		defer f.Release()
		return c.deliver(h, f.Payload)
	case wire.TypeError:
		defer f.Release()
		e, err := c.parseError(&f)
		if err != nil {
			return err
		}
		if r := c.heldRequest(h.RequestID); r != nil {
			r.abort(errorFromWire(e))
			return nil
		}
		c.mu.Lock()
		_, isPoll := c.polls[h.RequestID]
		c.mu.Unlock()
		if isPoll {
			c.pollFailed(h.RequestID, errorFromWire(e))
		}
		return nil
	}
	r := c.heldRequest(h.RequestID)
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
