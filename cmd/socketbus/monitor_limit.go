package main

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// The monitor has no authentication, so what a scraper can make the
// server hold is bounded here (SECURITY.md, "The monitoring endpoint"):
//   - at most maxScrapes snapshots (/metrics, /status, /connz) are taken at
//     once; a scrape beyond them is answered 503 at once, with
//     Retry-After, instead of building another snapshot;
//   - at most maxMonitorConns HTTP connections are open at once; the
//     listener answers one more with a 503 and closes it, and a
//     connection idle for monitorIdleTimeout is closed.
//
// A snapshot costs memory in proportion to the server's connections and
// channels (/connz about 0.3 KiB per connection, encoded one connection
// at a time; /status and /metrics a little per channel, with /metrics
// capped by --metrics-channels), so the scrapes in progress hold at most
// maxScrapes times that.
const (
	maxScrapes         = 4
	maxMonitorConns    = 64
	monitorIdleTimeout = 30 * time.Second
)

// scrapeLimit hands out the right to take a snapshot, maxScrapes at once.
type scrapeLimit struct {
	slots chan struct{}
	// hook, when set by a test, runs while a scrape holds its slot.
	hook func()
}

func newScrapeLimit() *scrapeLimit {
	return &scrapeLimit{slots: make(chan struct{}, maxScrapes)}
}

// limit wraps h: a request that finds every slot taken gets a 503.
func (l *scrapeLimit) limit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case l.slots <- struct{}{}:
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many scrapes at once; try again", http.StatusServiceUnavailable)
			return
		}
		defer func() { <-l.slots }()
		if l.hook != nil {
			l.hook()
		}
		h.ServeHTTP(w, r)
	})
}

// connLimitListener accepts at most max connections at once; past that it
// answers each new one with a 503 and closes it.
type connLimitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
}

// busyAnswer is what a connection over the limit is told.
const busyAnswer = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\nConnection: close\r\nContent-Length: 38\r\n\r\ntoo many monitor connections at once\r\n"

// Accept returns the next connection within the limit.
func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(busyAnswer))
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l}, nil
	}
}

// limitedConn gives its place back when closed, once.
type limitedConn struct {
	net.Conn
	l      *connLimitListener
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if !c.closed.Swap(true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}
