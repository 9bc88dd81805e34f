package testpeer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
)

// BackgroundPair keeps two Clients doing round trips on their own channel
// until stop is called. stop waits for at least one round trip to have
// completed, then reports how many did and the first error.
func BackgroundPair(t testing.TB, addr string) (stop func() (int, error)) {
	ch := socketbus.ChannelFromName("background-" + t.Name())
	a := DialClient(t, addr, ch)
	b := DialClient(t, addr, ch)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	done := 0
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	firstDone := make(chan struct{}) // closed after the first round trip
	senderExited := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			req, err := b.Receive(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("Receive: %w", err))
				}
				return
			}
			// Once stop has cancelled the sender, the request in
			// flight may fail here: that is no error of the pair's.
			body, err := io.ReadAll(req.Body)
			if err == nil {
				err = req.Respond(bytes.NewReader(Upper(body)))
			}
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("receiver: %w", err))
				}
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		defer close(senderExited)
		for i := 0; ctx.Err() == nil; i++ {
			want := fmt.Sprintf("round trip %d", i)
			got, err := RoundTrip(ctx, a, []byte(want))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				fail(fmt.Errorf("Send %d: %w", i, err))
				return
			}
			if string(got) != string(Upper([]byte(want))) {
				fail(fmt.Errorf("round trip %d: got %q, want %q", i, got, Upper([]byte(want))))
				return
			}
			mu.Lock()
			done++
			mu.Unlock()
			if i == 0 {
				close(firstDone)
			}
		}
	}()
	return func() (int, error) {
		select {
		case <-firstDone:
		case <-senderExited:
		case <-time.After(10 * time.Second):
		}
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return done, firstErr
	}
}
