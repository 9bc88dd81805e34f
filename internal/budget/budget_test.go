package budget_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/socketbus/socketbus/internal/budget"
)

func TestTryChargeHonoursEveryLevel(t *testing.T) {
	root := budget.New(8<<20, nil) // admits up to 7 MiB
	channel := root.Child(4 << 20)
	conn := channel.Child(1 << 20)
	if !conn.TryCharge(1 << 20) {
		t.Fatalf("TryCharge of the connection's whole share failed")
	}
	if conn.TryCharge(1) {
		t.Fatalf("TryCharge over the connection's share succeeded")
	}
	if got := root.Used(); got != 1<<20 {
		t.Fatalf("root used after a refused charge: got %d, want %d (no partial charge left behind)", got, 1<<20)
	}
	other := channel.Child(0)
	if !other.TryCharge(3 << 20) {
		t.Fatalf("TryCharge within the channel's share failed")
	}
	if other.TryCharge(1) {
		t.Fatalf("TryCharge over the channel's share succeeded")
	}
	big := root.Child(0)
	if !big.TryCharge(3 << 20) {
		t.Fatalf("TryCharge within the root's admission limit failed")
	}
	if big.TryCharge(1) {
		t.Fatalf("TryCharge into the root's reserve succeeded; the reserve is for Charge only")
	}
	big.Charge(512 << 10) // must-accept memory may use the reserve
	if got, want := root.Used(), int64(7<<20+512<<10); got != want {
		t.Fatalf("root used: got %d, want %d", got, want)
	}
	conn.Release(1 << 20)
	other.Release(3 << 20)
	big.Release(3<<20 + 512<<10)
	if got := root.Used(); got != 0 {
		t.Fatalf("root used after releasing everything: got %d, want 0", got)
	}
	if got, want := root.Peak(), int64(7<<20+512<<10); got != want {
		t.Fatalf("peak: got %d, want %d", got, want)
	}
}

func TestPressureAboveHighWater(t *testing.T) {
	var calls atomic.Int64
	root := budget.New(8<<20, func() { calls.Add(1) })
	a := root.Child(0)
	a.Charge(7 << 20) // high water is 7.5 MiB
	if calls.Load() != 0 || root.Over() {
		t.Fatalf("pressure below high water: calls %d, over %v", calls.Load(), root.Over())
	}
	a.Charge(1 << 20)
	if calls.Load() != 1 || !root.Over() {
		t.Fatalf("pressure above high water: calls %d, over %v; want 1, true", calls.Load(), root.Over())
	}
}

func TestConcurrentChargesNeverPassTheLimit(t *testing.T) {
	root := budget.New(8<<20, nil)
	var wg sync.WaitGroup
	var granted atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := root.Child(0)
			for i := 0; i < 10000; i++ {
				if acct.TryCharge(4096) {
					granted.Add(4096)
					if root.Used() > 7<<20 {
						t.Errorf("root used %d, over the admission limit %d", root.Used(), 7<<20)
						return
					}
					if i%3 == 0 {
						acct.Release(4096)
						granted.Add(-4096)
					}
				}
			}
		}()
	}
	wg.Wait()
	if root.Used() != granted.Load() {
		t.Fatalf("root used %d, granted %d", root.Used(), granted.Load())
	}
}

func TestNilAccountIsUnlimited(t *testing.T) {
	var a *budget.Account
	if !a.TryCharge(1<<40) || a.Used() != 0 || a.Child(5) != nil || a.Over() {
		t.Fatalf("a nil account limits or counts something")
	}
	a.Charge(1)
	a.Release(1)
}
