package main

import (
	"net"
	"strings"
)

// defaultPort is the bus port of an address given without one: the port
// of defaultServer.
const defaultPort = "7411"

// withDefaultPort returns addr with port added when it names a host
// without one: "127.0.0.1", "bus.example", "[::1]" and "::1" become
// host:port, "127.0.0.1:" too. Any other address is returned as it is,
// for the dial or listen to judge.
func withDefaultPort(addr, port string) string {
	if addr == "" {
		return addr
	}
	if host, p, err := net.SplitHostPort(addr); err == nil {
		if p == "" {
			return net.JoinHostPort(host, port)
		}
		return addr
	}
	host := addr
	if h, ok := strings.CutPrefix(host, "["); ok {
		if h, ok = strings.CutSuffix(h, "]"); !ok {
			return addr
		}
		host = h
	}
	// A colon left is an IPv6 address or a mistake; only the first gets a port.
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return addr
	}
	return net.JoinHostPort(host, port)
}
