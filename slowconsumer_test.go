package socketbus_test

import (
	"context"
	"errors"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// signalReader closes reached once more than threshold bytes were read.
type signalReader struct {
	r         io.Reader
	threshold int
	read      int
	reached   chan struct{}
	once      sync.Once
}

func (s *signalReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += n
	if s.read > s.threshold {
		s.once.Do(func() { close(s.reached) })
	}
	return n, err
}

// bystanders runs rounds of round trips from each requester, one at a
// time, and returns each round trip's latency.
func bystanders(ctx context.Context, requesters []*socketbus.Client, rounds int) ([]time.Duration, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, len(requesters))
	for _, c := range requesters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				start := time.Now()
				got, err := roundTrip(ctx, c, []byte("ping"))
				if err != nil {
					errs <- err
					return
				}
				if string(got) != "PING" {
					errs <- errors.New("wrong response " + string(got))
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, <-errs
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[len(lat)*99/100]
}

// TestSlowConsumerCutOff: a receiver that stops reading its socket while
// 100 requests of 1 MiB are routed to it does not slow 32 other clients,
// and after WriteTimeout it is cut off and every sender it held gets
// ErrPeerGone.
func TestSlowConsumerCutOff(t *testing.T) {
	const writeTimeout = 3 * time.Second
	srv, addr := startServer(t, server.Config{WriteTimeout: writeTimeout})
	ch := socketbus.ChannelFromName("slow-consumer")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	requesters := make([]*socketbus.Client, 32)
	for i := range requesters {
		requesters[i] = dial(t, addr, ch)
	}
	victims := dial(t, addr, ch)

	// The stalled receiver asks first, so the victims' requests go to it.
	testpeer.StalledJoin(t, addr, ch, 100)
	var vwg sync.WaitGroup
	victimErrs := make(chan error, 100)
	var granted []chan struct{}
	for range 100 {
		// A victim's body reads past its initial credit only once the
		// server has taken its start frame, and so handed the request to
		// one of the stalled client's Receives (the only ones waiting).
		body := &signalReader{r: testpeer.NewPattern(5, 1<<20), threshold: wire.InitialRequestCredit, reached: make(chan struct{})}
		granted = append(granted, body.reached)
		vwg.Add(1)
		go func() {
			defer vwg.Done()
			victimErrs <- victims.Send(ctx, body, io.Discard)
		}()
	}
	for _, g := range granted {
		<-g
	}
	if st := srv.Stats().Channel(ch); st.Queued != 0 || st.InFlight != 100 {
		t.Fatalf("channel: %d queued, %d in flight; want 0 and 100 (all held by the stalled client)", st.Queued, st.InFlight)
	}

	// Healthy receivers for the bystanders.
	rctx, stopReceivers := context.WithCancel(ctx)
	var rwg sync.WaitGroup
	for range 4 {
		r := dial(t, addr, ch)
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for serveN(rctx, r, 1, upper) == nil {
			}
		}()
	}

	during, err := bystanders(ctx, requesters, 20)
	if err != nil {
		t.Fatalf("bystander round trip while a receiver stalls: %v", err)
	}
	select {
	case err := <-victimErrs:
		t.Fatalf("a victim's Send ended (%v) before the bystanders finished: the stall was cut short, so it proves nothing", err)
	default:
	}
	vwg.Wait()
	close(victimErrs)
	for err := range victimErrs {
		if !errors.Is(err, socketbus.ErrPeerGone) {
			t.Fatalf("victim Send = %v, want ErrPeerGone", err)
		}
	}
	after, err := bystanders(ctx, requesters, 20)
	if err != nil {
		t.Fatalf("bystander round trip after the cut-off: %v", err)
	}
	t.Logf("bystanders: p99 %v while the receiver stalled, %v after it was cut off (%d round trips in each phase)",
		p99(during), p99(after), len(during))
	stopReceivers()
	rwg.Wait()
}
