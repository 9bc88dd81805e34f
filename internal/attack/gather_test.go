//go:build linux

package attack

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// attackGathers: on one channel, 64 members each poll 64 times and never
// read again; 4 attackers (v3) send gathers to all of them, each with a
// whole 16 KiB body, as fast as they can, reading only to count the
// refusals.
// Every gather holds a part per member, charged to its sender: the
// senders' accounts, not the members', bound what they can make the
// server hold, and the rest is refused with limit.
func attackGathers(ctx context.Context, addr string, deadline time.Time) (string, error) {
	const members, polls, attackers = 64, 64, 4
	ch := channelFor("i")
	var all []*rawConn
	defer func() { closeAll(all) }()
	for range members {
		m, err := dialRawVersion(addr, ch, deadline, 4096, wire.Version3)
		if err != nil {
			return "", err
		}
		all = append(all, m)
	}
	if err := pollAndStop(all, polls); err != nil {
		return "", err
	}
	body := make([]byte, 2+wire.InitialRequestCredit) // an empty header block, then the body
	var sent, refused atomic.Int64
	var wg sync.WaitGroup
	for range attackers {
		a, err := dialRawVersion(addr, ch, deadline, 4096, wire.Version3)
		if err != nil {
			return "", err
		}
		all = append(all, a)
		a.readFrames(func(h wire.Header, p []byte) {
			if h.Type == wire.TypeError && h.Flags == wire.FlagRequest {
				refused.Add(1)
			}
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				a.put(wire.TypeStart, wire.FlagRequest|wire.FlagAll, a.newID(), 0, true, 60000, body)
				sent.Add(1)
				if err := a.flushIfFull(); err != nil {
					return // the deadline
				}
			}
		}()
	}
	wg.Wait()
	return fmt.Sprintf("%d gathers of 16 KiB sent to %d members that never read; %d refusals read by the deadline",
		sent.Load(), members, refused.Load()), nil
}
