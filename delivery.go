package socketbus

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// deliveryFacts are what a client knows about whether a request it sent
// may have reached a receiver: the one rule of "at most once"
// (docs/PROTOCOL.md section 17) is decide, and every path that ends a
// request other than by its response or an error from the server asks
// it. The connection's writer sets taken and afterNotice; its reader sets
// the others. decide is asked only once both have stopped for the
// connection the request went out on, or by the reader for a refusal it
// has just read, so that the two cannot disagree.
type deliveryFacts struct {
	// taken: the writer took the request's start frame for writing, so
	// its bytes may have left the process, whatever the write returned.
	taken atomic.Bool
	// afterNotice: taken after the client had read the server's drain
	// notice on that connection. A server refuses every request start it
	// reads after sending the notice, so no receiver saw this one.
	afterNotice atomic.Bool
	// refused: the server answered server_closed, the refusal of a
	// request no receiver has had (refused at its start, or failed from
	// the queue by a server shutting down).
	refused atomic.Bool
	// acked: the server acknowledged the request or granted it credit:
	// it took the request, which may now be with a receiver.
	acked atomic.Bool
	// answered: a frame of the response arrived: a receiver had it.
	answered atomic.Bool
	// drained: the connection ended with the server's goodbye, the
	// server_closed error it writes only after a complete drain, behind
	// the end of every request it had read (a response, or an error); a
	// request still open then was never read by the server.
	drained atomic.Bool
}

// verdict is what becomes of a request whose connection ended before its
// response did.
type verdict int

const (
	// mayHaveBeenSeen: a receiver may have had the request. It is never
	// sent again, and the call fails with ErrDisconnected.
	mayHaveBeenSeen verdict = iota
	// resend: no receiver had it and its body can be sent again: it goes
	// again on the next connection, under the same request ID.
	resend
	// notDelivered: no receiver had it, but it cannot be sent again (its
	// body cannot be replayed, or the client does not reconnect): the
	// call fails with ErrNotDelivered, and retrying is safe.
	notDelivered
)

func (v verdict) String() string {
	switch v {
	case resend:
		return "resend"
	case notDelivered:
		return "not delivered"
	}
	return "may have been seen"
}

// unseen reports whether no receiver can have had the request: it was
// refused, never taken for writing, taken after the drain notice, or
// still open at the server's goodbye, and nothing says the server took
// it.
func (f *deliveryFacts) unseen() bool {
	switch {
	case f.answered.Load():
		return false
	case f.refused.Load():
		return true
	case f.acked.Load():
		return false
	}
	return !f.taken.Load() || f.afterNotice.Load() || f.drained.Load()
}

// decide says what becomes of the request: canResend says its body can
// be replayed and the client reconnects.
func (f *deliveryFacts) decide(canResend bool) verdict {
	switch {
	case !f.unseen():
		return mayHaveBeenSeen
	case canResend:
		return resend
	}
	return notDelivered
}

// unsentError is the error of a Send whose request was never sent on a
// live connection (or only refused, or re-sent for want of a receiver)
// when the client's connection is gone for good with err: ErrNotDelivered
// in place of the client's ErrDisconnected, which would say the request
// may have been seen.
func unsentError(err error) error {
	if errors.Is(err, ErrDisconnected) {
		return verdictError(notDelivered, err)
	}
	return err
}

// verdictError is the error that ends a send attempt with verdict v, for
// a connection lost with lost (or a refusal).
func verdictError(v verdict, lost error) error {
	switch v {
	case resend:
		return errResend
	case notDelivered:
		if errors.Is(lost, ErrDisconnected) {
			// The cause, but not ErrDisconnected: that would say the
			// request may have been seen.
			return fmt.Errorf("socketbus: send: %w (%v)", ErrNotDelivered, lost)
		}
		return fmt.Errorf("socketbus: send: %w: %w", ErrNotDelivered, lost)
	}
	return lost
}
