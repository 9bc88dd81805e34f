//go:build unix

package frameconn

import "syscall"

// inlineWritesSupported says whether rawWrite can write a socket without
// waiting for it: a non-blocking write(2) on its descriptor.
const inlineWritesSupported = true

// rawWrite makes one write attempt of inlineBuf; it never waits for the
// socket.
func (c *Conn) rawWrite(fd uintptr) bool {
	c.inlineN, c.inlineErr = syscall.Write(int(fd), c.inlineBuf)
	return true
}
