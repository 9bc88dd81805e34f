//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package server

import "net"

// peekByte is not available here: the server does not sniff connections.
func peekByte(net.Conn) (byte, bool) { return 0, false }
