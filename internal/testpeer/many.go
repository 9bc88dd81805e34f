package testpeer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// Helpers for the hardening tests, which hold many raw connections and
// clients at once, in the root package and in package server. They
// return errors instead of failing the test, so that worker goroutines
// can use them.

// OpenSmall opens a raw connection to addr without joining. Its reads and
// writes fail after 30 s; its read buffer is small, for tests that hold
// thousands of connections.
func OpenSmall(addr string) (*Conn, error) {
	return Open(addr, Options{ReaderSize: 512})
}

// JoinSmall opens a connection as OpenSmall does and joins channel with
// token, by hand.
func JoinSmall(addr string, channel uuid.UUID, token string) (*Conn, error) {
	c, err := OpenSmall(addr)
	if err != nil {
		return nil, err
	}
	if err := c.JoinChannel(channel, []byte(token)); err != nil {
		c.NC.Close()
		return nil, err
	}
	return c, nil
}

// Settle waits until srv has no more open connections than baseConns and
// the process runs no more goroutines than baseGoroutines, or until
// timeout; it returns what it last saw. A test calls it once every
// connection it opened has read EOF, so the server has closed each socket.
// The connections leaving Stats it waits for as events (Watch); what
// remains then is their goroutines returning, a few instructions after,
// which no event can tell: for that alone it yields the processor until
// the count is down. It never sleeps.
func Settle(t testing.TB, srv *server.Server, baseConns, baseGoroutines int, timeout time.Duration) (conns, goroutines int) {
	deadline := time.Now().Add(timeout)
	WatchServer(t, srv).Until(timeout, func() bool { return srv.Stats().Connections <= baseConns })
	for {
		conns, goroutines = srv.Stats().Connections, runtime.NumGoroutine()
		if conns <= baseConns && goroutines <= baseGoroutines || time.Now().After(deadline) {
			return conns, goroutines
		}
		runtime.Gosched()
	}
}

// Responders runs n goroutines per client that answer every request they
// receive: with respond, or when it is nil with Upper(body). Requests that
// end before their body is read (cancelled, peer gone) are skipped. stop
// ends them and waits.
func Responders(clients []*socketbus.Client, n int, respond func(req *socketbus.Request, body []byte)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range clients {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, err := c.Receive(ctx)
					if err != nil {
						if ctx.Err() != nil || errors.Is(err, socketbus.ErrClosed) {
							return
						}
						continue
					}
					body, err := io.ReadAll(req.Body)
					if err != nil {
						continue
					}
					if respond != nil {
						respond(req, body)
					} else {
						req.Respond(bytes.NewReader(Upper(body)))
					}
				}
			}()
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// WholeStream encodes a whole stream with flags (a request or a response)
// of request id, from client from on channel: start, one chunk with body,
// end.
func WholeStream(flags wire.Flags, from, channel, id uuid.UUID, body []byte) []byte {
	return Stream(wire.Header{Version: wire.Version, Flags: flags, RequestID: id, ClientID: from, ChannelID: channel}, body)
}

// Counts tallies outcomes by kind from many goroutines. Its zero value is
// empty and ready.
type Counts struct {
	mu    sync.Mutex
	n     map[string]int
	first map[string]error
}

// Add counts one outcome of kind, and keeps err if it is the first error
// of that kind.
func (c *Counts) Add(kind string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n, c.first = make(map[string]int), make(map[string]error)
	}
	c.n[kind]++
	if err != nil && c.first[kind] == nil {
		c.first[kind] = err
	}
}

// Get returns how many outcomes of kind were counted.
func (c *Counts) Get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// String lists the counts by kind, sorted, with each kind's first error.
func (c *Counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.n))
	for k := range c.n {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b bytes.Buffer
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, c.n[k])
		if err := c.first[k]; err != nil {
			fmt.Fprintf(&b, " (first: %v)", err)
		}
	}
	return b.String()
}
