//go:build !unix

package frameconn

import "errors"

// inlineWritesSupported is false: a Windows socket handle is overlapped,
// and a plain write on it would wait. Every batch goes to the writer
// goroutine, as for a connection without Config.InlineWrites.
const inlineWritesSupported = false

// rawWrite is never called where inline writes are not supported.
func (c *Conn) rawWrite(uintptr) bool {
	c.inlineErr = errors.ErrUnsupported
	return true
}
