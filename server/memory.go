package server

import (
	"sync"
	"sync/atomic"

	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// connFixedCost is what the server charges its memory budget for every
// connection from accept to close, beyond the frames it holds: the read
// buffer at its largest (16 KiB; 512 bytes while idle), two goroutines'
// stacks and the connection's bookkeeping.
const connFixedCost = 40 << 10

// A server connection's reader pauses while frames costing more than
// serverQueuePause are queued to it, and the connection is cut off as a
// slow consumer when frames outside flow control — control frames, however
// caused — cost more than serverControlLimit. An honest client's control
// frames are bounded by what it has open (MaxInFlightPerClient requests
// and Receives, a few frames each), well under the limit.
const (
	serverQueuePause   = 1 << 20
	serverControlLimit = 8 << 20
)

// reaper cuts connections while the memory budget is over its high-water
// mark, one goroutine at a time.
type reaper struct {
	running atomic.Bool
	owed    atomic.Bool
	cuts    atomic.Int64
	wg      sync.WaitGroup
}

// memoryPressure is the budget's pressure hook: it runs on charging
// goroutines, with router locks held, so it only starts the reaper.
func (s *Server) memoryPressure() {
	s.reaper.owed.Store(true)
	if s.reaper.running.CompareAndSwap(false, true) {
		s.reaper.wg.Add(1)
		go s.reap()
	}
}

// reap cuts the connection that holds the most memory — its streams, its
// write queue, the frame it is reading — until the budget is back under
// its high-water mark. A connection that holds the most is one that sends
// the most or reads the least: either way, cutting it frees the most.
func (s *Server) reap() {
	defer s.reaper.wg.Done()
	for {
		for s.reaper.owed.Swap(false) {
			for s.memory.Over() {
				victim := s.heaviestConn()
				if victim == nil {
					break
				}
				s.reaper.cuts.Add(1)
				victim.Close(errMemoryCut)
				victim.Wait() // its memory is back once both its goroutines are
			}
		}
		s.reaper.running.Store(false)
		if !s.reaper.owed.Load() || !s.reaper.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// errMemoryCut is why a connection cut for memory closed.
var errMemoryCut = wire.Errorf(wire.CodeLimit, "the server's memory is short and this connection held the most")

// heaviestConn returns the open, joined connection whose account holds the
// most, or nil.
func (s *Server) heaviestConn() *frameconn.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var heaviest *frameconn.Conn
	var most int64
	for c := range s.conns {
		if c.conn == nil || c.member == nil {
			continue
		}
		select {
		case <-c.conn.Done():
			continue
		default:
		}
		if used := c.member.Account().Used(); used > most {
			heaviest, most = c.conn, used
		}
	}
	return heaviest
}
