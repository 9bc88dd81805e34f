package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrServerClosed is the error of a closed server: Server.Serve returns
// it after Shutdown or Close, and the client maps code server_closed to
// it. Package socketbus exports it as ErrServerClosed; it lives here so
// that the client and the server share it without importing each other.
var ErrServerClosed = errors.New("socketbus: server closed")

// TLSRequiredMessage is the message of the error frame a TLS server
// answers a plain join with; Dial recognises it.
const TLSRequiredMessage = "this server requires TLS; connect with TLS (--tls)"

// Code is the numeric code an error frame carries.
type Code uint16

// The error codes of protocol v1. docs/PROTOCOL.md says who sends each.
const (
	CodeProtocol     Code = 1  // malformed frame or stream; the connection is closed
	CodeBadVersion   Code = 2  // unsupported protocol version; the connection is closed
	CodeTooLarge     Code = 3  // a payload or body over a limit
	CodeUnauthorized Code = 4  // the join was refused by authentication
	CodeConflict     Code = 5  // the client ID is already connected
	CodeNoPeers      Code = 6  // no other client is joined to the channel
	CodeTimeout      Code = 7  // the request's timeout passed
	CodePeerGone     Code = 8  // the other side's connection ended
	CodeCancelled    Code = 9  // the sender cancelled the request
	CodeAborted      Code = 10 // the body could not be read to its end by its writer
	CodeRemote       Code = 11 // the receiver failed the request (Request.Fail)
	CodeServerClosed Code = 12 // the server is shutting down
	CodeLimit        Code = 13 // a server limit was reached (connections, in-flight, queue)
	CodeIdle         Code = 14 // join timeout, read deadline or missed pings
	CodeInternal     Code = 15 // the server failed while handling the connection's frames; the connection is closed

	// CodeReturned (v2 only) is sent by a receiver in error|receive to give
	// back a pushed request no handler took; it never reaches a sender.
	CodeReturned Code = 16
)

var codeNames = map[Code]string{
	CodeProtocol: "protocol", CodeBadVersion: "bad_version", CodeTooLarge: "too_large",
	CodeUnauthorized: "unauthorized", CodeConflict: "conflict", CodeNoPeers: "no_peers",
	CodeTimeout: "timeout", CodePeerGone: "peer_gone", CodeCancelled: "cancelled",
	CodeAborted: "aborted", CodeRemote: "remote", CodeServerClosed: "server_closed",
	CodeLimit: "limit", CodeIdle: "idle", CodeInternal: "internal", CodeReturned: "returned",
}

// String returns the code's snake_case name, or "code(N)" when unknown.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// Error is an error with a protocol code: what an error frame carries.
type Error struct {
	Code    Code
	Message string

	// AppCode (v3) is the application's error code of a Fail: 0 to
	// MaxAppCode RFC 9110 token characters, "" for none.
	AppCode string
	// Headers (v3) is the encoded header block of a Fail's response
	// headers, its length prefix included; nil for none.
	Headers []byte
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns the code's name and the message.
func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// maxMessage keeps an error payload within one frame.
const maxMessage = MaxFramePayload - 2

// AppendError appends the payload of an error frame to b: the code as a
// big-endian uint16, then the message in UTF-8. Invalid UTF-8 becomes
// U+FFFD and a long message is cut, at a character boundary, to fit one
// frame.
func AppendError(b []byte, code Code, message string) []byte {
	message = cutMessage(message, maxMessage)
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, message...)
}

// MaxAppCode is the longest application error code a v3 error carries.
const MaxAppCode = 64

// CheckAppCode checks that code is an application error code: at most
// MaxAppCode RFC 9110 token characters ("" is none).
func CheckAppCode(code string) error {
	if len(code) > MaxAppCode {
		return Errorf(CodeProtocol, "application error code of %d bytes: at most %d", len(code), MaxAppCode)
	}
	for i := 0; i < len(code); i++ {
		if !isTokenChar(code[i]) {
			return Errorf(CodeProtocol, "application error code %q: byte %#x is not a token character", code, code[i])
		}
	}
	return nil
}

// AppendErrorVersion appends the payload of an error frame of protocol
// version v to b: AppendError's for v1 and v2; for v3 the code, a 1-byte
// application code length, the application code, a header block (e's
// Headers, or the empty block) and the message. The caller has checked
// e.AppCode and e.Headers; the message is cut, at a character boundary,
// to fit one frame.
func AppendErrorVersion(b []byte, v uint8, e *Error) []byte {
	if v < Version3 {
		return AppendError(b, e.Code, e.Message)
	}
	headers := e.Headers
	if len(headers) == 0 {
		headers = NoHeaders
	}
	b = binary.BigEndian.AppendUint16(b, uint16(e.Code))
	b = append(b, byte(len(e.AppCode)))
	b = append(b, e.AppCode...)
	b = append(b, headers...)
	return append(b, cutMessage(e.Message, MaxFramePayload-3-len(e.AppCode)-len(headers))...)
}

// ErrorSize returns an upper bound of what AppendErrorVersion appends.
func ErrorSize(v uint8, e *Error) int {
	n := 2 + len(e.Message)
	if v >= Version3 {
		n += 1 + len(e.AppCode) + max(len(e.Headers), HeaderBlockLenSize)
	}
	return min(n, MaxFramePayload)
}

// ParseErrorVersion decodes the payload of an error frame of protocol
// version v. A v3 payload's header block over maxHeaders is refused with
// too_large, as in a start frame; the block is kept encoded in Headers.
func ParseErrorVersion(v uint8, p []byte, maxHeaders int) (*Error, error) {
	if v < Version3 {
		return ParseError(p)
	}
	if len(p) < 3 {
		return nil, Errorf(CodeProtocol, "v3 error payload of %d bytes is shorter than its code and application code length", len(p))
	}
	code, al := Code(binary.BigEndian.Uint16(p)), int(p[2])
	if len(p) < 3+al {
		return nil, Errorf(CodeProtocol, "v3 error payload: an application code of %d bytes, %d left", al, len(p)-3)
	}
	app := string(p[3 : 3+al])
	if err := CheckAppCode(app); err != nil {
		return nil, err
	}
	rest := p[3+al:]
	n, err := CheckHeaderBlock(rest, maxHeaders)
	if err != nil {
		return nil, err
	}
	var headers []byte
	if n > HeaderBlockLenSize {
		headers = append([]byte(nil), rest[:n]...)
	}
	msg := rest[n:]
	if !utf8.Valid(msg) {
		return nil, Errorf(CodeProtocol, "error message is not valid UTF-8")
	}
	return &Error{Code: code, Message: string(msg), AppCode: app, Headers: headers}, nil
}

// cutMessage makes message valid UTF-8 of at most n bytes, cut at a
// character boundary.
func cutMessage(message string, n int) string {
	message = strings.ToValidUTF8(message, "\uFFFD")
	if len(message) > n {
		cut := max(n, 0)
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut--
		}
		message = message[:cut]
	}
	return message
}

// ParseError decodes an error frame's payload (versions 1 and 2).
func ParseError(p []byte) (*Error, error) {
	if len(p) < 2 {
		return nil, Errorf(CodeProtocol, "error payload of %d bytes is shorter than its 2-byte code", len(p))
	}
	msg := p[2:]
	if !utf8.Valid(msg) {
		return nil, Errorf(CodeProtocol, "error message is not valid UTF-8")
	}
	return &Error{Code: Code(binary.BigEndian.Uint16(p)), Message: string(msg)}, nil
}

// CreditSize is the payload size of a credit grant.
const CreditSize = 4

// AppendCredit appends a credit grant's payload: the increment in bytes as a
// big-endian uint32.
func AppendCredit(b []byte, n uint32) []byte { return binary.BigEndian.AppendUint32(b, n) }

// ParseCredit decodes a credit grant's payload.
func ParseCredit(p []byte) (uint32, error) {
	if len(p) != CreditSize {
		return 0, Errorf(CodeProtocol, "credit payload is %d bytes, want %d", len(p), CreditSize)
	}
	n := binary.BigEndian.Uint32(p)
	if n == 0 {
		return 0, Errorf(CodeProtocol, "credit grant of zero bytes")
	}
	return n, nil
}
