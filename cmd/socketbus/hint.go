package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"syscall"

	"github.com/socketbus/socketbus"
)

// busPortHint says where the bus port is.
const busPortHint = "--server takes the bus port, the one serve --addr listens on (default " + defaultServer + ")"

// dialHint says, in the command's terms, what is probably wrong when
// joining failed with err, or returns "" when it has no idea. usedTLS says
// whether the client spoke TLS.
func dialHint(err error, usedTLS bool) string {
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &record) && bytes.HasPrefix(record.RecordHeader[:], []byte("HTTP/")):
		return "the server answered HTTP, not TLS: is this the monitor port? " + busPortHint
	case errors.As(err, &record):
		return "the server did not answer TLS: is it a plain (non-TLS) server? drop --tls"
	case errors.Is(err, socketbus.ErrTLSRequired):
		return "the server requires TLS: connect with --tls (or --tls-ca FILE for a certificate of your own CA)"
	case errors.Is(err, socketbus.ErrHTTPAnswer):
		return "is this the monitor port? " + busPortHint
	case !usedTLS && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return "the server closed the connection without answering the join: if it requires TLS, connect with --tls"
	}
	return ""
}

// hintError is a failed join with the server's address and a hint of what
// is probably wrong.
type hintError struct {
	addr string
	hint string
	err  error
}

// Error is the library's error, with the address when it does not name it
// already, and the hint.
func (e *hintError) Error() string {
	msg := e.err.Error()
	if !strings.Contains(msg, e.addr) {
		msg = e.addr + ": " + msg
	}
	if e.hint != "" {
		msg += ": " + e.hint
	}
	return msg
}

func (e *hintError) Unwrap() error { return e.err }
