package testpeer

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/socketbus/socketbus"
)

// RunCounter counts handler runs by request body, and tells waiters of
// each body's first run.
type RunCounter struct {
	mu    sync.Mutex
	runs  map[string]int
	first map[string]chan struct{}
}

// NewRunCounter returns an empty RunCounter.
func NewRunCounter() *RunCounter {
	return &RunCounter{runs: map[string]int{}, first: map[string]chan struct{}{}}
}

// Ran counts a run of body and returns how many there have been.
func (rc *RunCounter) Ran(body string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.runs[body]++
	n := rc.runs[body]
	if n == 1 {
		close(rc.firstLocked(body))
	}
	return n
}

func (rc *RunCounter) firstLocked(body string) chan struct{} {
	ch, ok := rc.first[body]
	if !ok {
		ch = make(chan struct{})
		rc.first[body] = ch
	}
	return ch
}

// Started is closed when body first runs.
func (rc *RunCounter) Started(body string) <-chan struct{} {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.firstLocked(body)
}

// Count returns how many times body ran.
func (rc *RunCounter) Count(body string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.runs[body]
}

// Twice returns the bodies that ran more than once.
func (rc *RunCounter) Twice() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for b, n := range rc.runs {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s (%d runs)", b, n))
		}
	}
	return out
}

// CountingServe runs a Serve on c whose handler counts each run by body
// and echoes the body, until the test ends.
func CountingServe(t testing.TB, c *socketbus.Client, rc *RunCounter, hold func(req *socketbus.Request, body string, run int)) {
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = c.Serve(ctx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			var body bytes.Buffer
			if _, err := body.ReadFrom(req.Body); err != nil {
				return
			}
			run := rc.Ran(body.String())
			if hold != nil {
				hold(req, body.String(), run)
			}
			_ = req.Respond(bytes.NewReader(body.Bytes()))
		}))
	}()
	t.Cleanup(func() { stop(); <-served })
}
