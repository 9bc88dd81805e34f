package server

import (
	"time"
)

// SetWarnWindow sets the window of s's warning limiter, so that a test of
// the limiter does not depend on how fast the machine is.
func SetWarnWindow(s *Server, d time.Duration) {
	s.warns.mu.Lock()
	s.warns.window = d
	s.warns.mu.Unlock()
}

// ChargeConn charges n bytes to the memory account of the joined
// connection from remote until it closes, as if it held them, and reports
// whether there is such a connection: past the budget's high-water mark
// the server cuts it for memory.
func ChargeConn(s *Server, remote string, n int64) bool {
	s.mu.Lock()
	var c *serverConn
	for x := range s.conns {
		if x.remote == remote && x.member != nil {
			c = x
		}
	}
	s.mu.Unlock()
	if c == nil {
		return false
	}
	acct := c.member.Account()
	go func() {
		<-c.conn.Done()
		acct.Release(n)
	}()
	acct.Charge(n)
	return true
}
