package frameconn

import (
	"net"
	"sync/atomic"
	"testing"
)

// Helpers for this package's tests, inside it and outside (frameconn_test).

// Pair returns the two ends of a loopback TCP connection, closed when the
// test ends.
func Pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Memory is a frame.Memory that keeps its balance.
type Memory struct{ n atomic.Int64 }

func (m *Memory) Charge(n int64)  { m.n.Add(n) }
func (m *Memory) Release(n int64) { m.n.Add(-n) }

// Held returns what it holds.
func (m *Memory) Held() int64 { return m.n.Load() }
