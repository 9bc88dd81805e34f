//go:build linux

package attack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/socketbus/socketbus"
)

// bystanderWindow is the span in which the bystander must complete at
// least one request, all through an attack.
const bystanderWindow = time.Second

// bystanderTimeout bounds each of the bystander's requests.
const bystanderTimeout = 3 * time.Second

// bystander is a pair of ordinary clients on a channel of their own, one
// sending small requests one after another and one answering them, while
// an attack runs on other channels.
type bystander struct {
	start  time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup
	a, b   *socketbus.Client

	mu   sync.Mutex
	done []time.Duration // when each request completed, since start
	errs []error
}

// startBystander joins two clients to the bystander channel on addr and
// starts their round trips.
func startBystander(addr string) (*bystander, error) {
	ch := socketbus.ChannelFromName("attack-bystander")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := socketbus.Dial(ctx, addr, ch)
	if err != nil {
		return nil, fmt.Errorf("bystander dial: %w", err)
	}
	b, err := socketbus.Dial(ctx, addr, ch)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("bystander dial: %w", err)
	}
	run, stop := context.WithCancel(context.Background())
	by := &bystander{start: time.Now(), cancel: stop, a: a, b: b}
	by.wg.Add(2)
	go by.answer(run)
	go by.send(run)
	return by, nil
}

func (by *bystander) fail(err error) {
	by.mu.Lock()
	defer by.mu.Unlock()
	by.errs = append(by.errs, err)
}

// answer upper-cases every request's body.
func (by *bystander) answer(ctx context.Context) {
	defer by.wg.Done()
	for {
		req, err := by.b.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				by.fail(fmt.Errorf("Receive: %w", err))
			}
			return
		}
		body, err := io.ReadAll(req.Body)
		if err == nil {
			err = req.Respond(bytes.NewReader(bytes.ToUpper(body)))
		}
		if err != nil && ctx.Err() == nil {
			by.fail(fmt.Errorf("answering: %w", err))
			return
		}
	}
}

// send makes round trips one after another; a failed one is recorded and
// the next one tried, until the client's connection is gone.
func (by *bystander) send(ctx context.Context) {
	defer by.wg.Done()
	for i := 0; ctx.Err() == nil; i++ {
		want := fmt.Sprintf("bystander request %d", i)
		rctx, cancel := context.WithTimeout(ctx, bystanderTimeout)
		var out bytes.Buffer
		err := by.a.Send(rctx, bytes.NewReader([]byte(want)), &out)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			by.fail(fmt.Errorf("Send %d: %w", i, err))
			if errors.Is(err, socketbus.ErrClosed) {
				return
			}
		case out.String() != string(bytes.ToUpper([]byte(want))):
			by.fail(fmt.Errorf("Send %d: got %q, want %q", i, out.String(), bytes.ToUpper([]byte(want))))
		default:
			by.mu.Lock()
			by.done = append(by.done, time.Since(by.start))
			by.mu.Unlock()
		}
	}
}

// bystanderResult is what the bystander did while an attack ran.
type bystanderResult struct {
	completed int     // requests completed
	windows   []int   // requests completed in each whole bystanderWindow
	errs      []error // failures
}

// stop ends the round trips, closes the clients and reports.
func (by *bystander) stop() bystanderResult {
	elapsed := time.Since(by.start)
	by.cancel()
	by.wg.Wait()
	by.a.Close()
	by.b.Close()
	by.mu.Lock()
	defer by.mu.Unlock()
	res := bystanderResult{completed: len(by.done), errs: by.errs}
	res.windows = make([]int, int(elapsed/bystanderWindow))
	for _, d := range by.done {
		if i := int(d / bystanderWindow); i < len(res.windows) {
			res.windows[i]++
		}
	}
	return res
}

// emptyWindows lists the whole windows in which nothing completed.
func (r bystanderResult) emptyWindows() []int {
	var empty []int
	for i, n := range r.windows {
		if n == 0 {
			empty = append(empty, i)
		}
	}
	return empty
}
