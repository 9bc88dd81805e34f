package socketbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/socketbus/socketbus/internal/wire"
)

// Errors returned by Client, Request and Server methods. Test for them with
// errors.Is: the errors returned usually wrap one of these with detail.
var (
	// ErrClosed is returned by calls on a Client that has been closed,
	// including calls that were in flight when Close was called.
	ErrClosed = errors.New("socketbus: client closed")
	// ErrServerClosed is returned by Serve after Shutdown or Close, and by
	// client calls that the server refused or ended because it is shutting
	// down.
	ErrServerClosed = wire.ErrServerClosed
	// ErrTimeout is returned when a request's timeout passes before its
	// response is complete. It also matches context.DeadlineExceeded and
	// satisfies net.Error with Timeout() == true.
	ErrTimeout error = &timeoutError{}
	// ErrPeerGone is returned when the other side of a request disconnected
	// before the request ended.
	ErrPeerGone = errors.New("socketbus: peer disconnected")
	// ErrNoPeers is returned by Send when no other client is joined to the
	// channel.
	ErrNoPeers = errors.New("socketbus: no peers on the channel")
	// ErrProtocol is returned when the other end broke the wire protocol;
	// the connection is closed.
	ErrProtocol = errors.New("socketbus: protocol error")
	// ErrTooLarge is returned when a body exceeds the server's
	// server.Config.MaxMessageBytes.
	ErrTooLarge = errors.New("socketbus: body too large")
	// ErrCancelled is returned by reads of a Request's Body, and by Respond,
	// when the sender cancelled the request.
	ErrCancelled = errors.New("socketbus: request cancelled by its sender")
	// ErrAborted is returned by reads of a Request's Body when the sender's
	// body could not be read to its end: the body is incomplete.
	ErrAborted = errors.New("socketbus: request body aborted by its sender")
	// ErrUnauthorized is returned by Dial when the server refused the join.
	ErrUnauthorized = errors.New("socketbus: unauthorized")
	// ErrLimit is returned when a server limit refused a connection, a
	// request or a Receive, or when receivers returned a request more
	// times than the server allows (no handler took it).
	ErrLimit = errors.New("socketbus: server limit reached")
	// ErrConflict is returned by Dial when another connection already uses
	// the client ID, or when the client that last used it registered a key
	// (PROTOCOL.md §7) and this join does not carry it.
	ErrConflict = errors.New("socketbus: client ID already connected")
	// ErrDisconnected means the client's connection to its server was
	// lost while the call was in progress and the request may have reached
	// a receiver, so it is not re-sent: it is distinct from ErrClosed (the
	// application's own Close) and ErrPeerGone (the other side left). A
	// handler's Request.Context is cancelled with it when the receiver's own
	// connection is lost.
	ErrDisconnected = errors.New("socketbus: connection to the server lost")
	// ErrNotDelivered means the request provably never reached a
	// receiver and was not re-sent (its body cannot be replayed, or the
	// client does not reconnect, or it had given up): retrying it is safe.
	ErrNotDelivered = errors.New("socketbus: request never delivered")
	// ErrInternal means the server failed while handling this
	// connection's frames (a bug on the server's side, which it logs) and
	// closed the connection; other connections go on.
	ErrInternal = errors.New("socketbus: internal server error")
)

// timeoutError is ErrTimeout's type: it matches context.DeadlineExceeded
// too and is a net.Error.
type timeoutError struct{}

func (*timeoutError) Error() string   { return "socketbus: request timed out" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }
func (*timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded
}

// RemoteError is returned by Send when the receiver answered with
// Request.Fail: Message is the text of the error it failed with, and Code
// the application's error code when the handler failed with a
// *RemoteError that has one (protocol v3; "" otherwise). A handler fails
// with Fail(&RemoteError{Code: "not_found", Message: "no such order"}) to
// let its callers branch on Code.
//
// A Code is at most 64 RFC 9110 token characters (letters, digits and
// !#$%&'*+-.^_`|~).
type RemoteError struct {
	Code    string
	Message string
}

// Error returns the code and message, prefixed to say they came from the
// receiver.
func (e *RemoteError) Error() string {
	if e.Code != "" {
		return "socketbus: remote error " + e.Code + ": " + e.Message
	}
	return "socketbus: remote error: " + e.Message
}

// codeErrors maps error codes to the sentinels callers test for; codes not
// listed (protocol, bad_version and any unknown code) map to ErrProtocol.
var codeErrors = map[wire.Code]error{
	wire.CodeNoPeers:      ErrNoPeers,
	wire.CodeTimeout:      ErrTimeout,
	wire.CodePeerGone:     ErrPeerGone,
	wire.CodeServerClosed: ErrServerClosed,
	wire.CodeTooLarge:     ErrTooLarge,
	wire.CodeCancelled:    ErrCancelled,
	wire.CodeAborted:      ErrAborted,
	wire.CodeUnauthorized: ErrUnauthorized,
	wire.CodeLimit:        ErrLimit,
	wire.CodeIdle:         ErrLimit,
	wire.CodeConflict:     ErrConflict,
	wire.CodeInternal:     ErrInternal,
}

// errorFromWire maps an error frame to the error a caller sees: a
// *RemoteError for code remote, otherwise the code's sentinel wrapped
// with the frame's message.
func errorFromWire(e *wire.Error) error {
	if e.Code == wire.CodeRemote {
		return &RemoteError{Code: e.AppCode, Message: e.Message}
	}
	base, ok := codeErrors[e.Code]
	if !ok {
		base = ErrProtocol
	}
	return fmt.Errorf("%w (%s)", base, e.Message)
}
