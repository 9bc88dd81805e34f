//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package server

import (
	"errors"
	"net"
	"syscall"
)

// peekByte waits for the first byte nc receives and returns it without
// consuming it. It reports false when nc is not a socket it can peek at,
// or the peek failed (the deadline passed, the peer closed): the caller
// then reads as usual and meets the same condition there.
func peekByte(nc net.Conn) (byte, bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var (
		buf  [1]byte
		n    int
		perr error
	)
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
			if !errors.Is(perr, syscall.EINTR) {
				break
			}
		}
		// Nothing yet: Read waits for the socket to be readable and calls again.
		return !errors.Is(perr, syscall.EAGAIN)
	})
	if err != nil || perr != nil || n != 1 {
		return 0, false
	}
	return buf[0], true
}
