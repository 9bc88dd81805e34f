package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socketbus/socketbus/server"
)

// testMonitor starts a monitor for an idle server on a loopback port.
func testMonitor(t *testing.T) (*monitor, string) {
	t.Helper()
	srv := server.New(server.Config{})
	t.Cleanup(func() { srv.Close() })
	files, err := newReloadable("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := startMonitor(ln, srv, "127.0.0.1:1", files, defaultMetricsChannels, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.shutdown(ctx); err != nil {
			t.Errorf("monitor shutdown: %v", err)
		}
	})
	return m, "http://" + ln.Addr().String()
}

// noKeepAlive is an HTTP client whose every request has a connection of
// its own, closed after it.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}

// TestMonitorScrapesAreBounded: with maxScrapes snapshots being taken, one
// more scrape is answered 503 at once (issue 17, finding 15: 200
// concurrent scrapers each built a snapshot of 5,000 connections); the
// health check still answers, and once the scrapes end a new one is
// served.
func TestMonitorScrapesAreBounded(t *testing.T) {
	m, base := testMonitor(t)
	inside := make(chan struct{}, maxScrapes)
	release := make(chan struct{})
	m.scrapes.hook = func() {
		inside <- struct{}{}
		<-release
	}
	codes := make(chan int, maxScrapes)
	for range maxScrapes {
		go func() {
			resp, err := noKeepAlive.Get(base + "/status")
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for range maxScrapes {
		<-inside
	}
	for _, path := range []string{"/status", "/connz", "/metrics"} {
		resp, err := noKeepAlive.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("GET %s with %d scrapes running: got %d, want 503 with Retry-After", path, maxScrapes, resp.StatusCode)
		}
	}
	if resp, err := noKeepAlive.Get(base + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz with the scrapes full: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	close(release)
	for range maxScrapes {
		if code := <-codes; code != http.StatusOK {
			t.Fatalf("a scrape within the limit: got %d, want 200", code)
		}
	}
	m.scrapes.hook = nil
	resp, err := noKeepAlive.Get(base + "/connz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /connz after the scrapes ended: %v %v, want 200", resp, err)
	}
	var rep connzReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("decoding /connz: %v", err)
	}
	resp.Body.Close()
}

// TestMonitorConnectionsAreBounded: with maxMonitorConns connections open,
// one more is answered 503 and closed.
func TestMonitorConnectionsAreBounded(t *testing.T) {
	_, base := testMonitor(t)
	addr := strings.TrimPrefix(base, "http://")
	for i := range maxMonitorConns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		// A keep-alive request answered proves the connection accepted.
		fmt.Fprintf(nc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d: %v %v, want 200", i, resp, err)
		}
		resp.Body.Close()
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection %d: %v %v, want 503", maxMonitorConns+1, resp, err)
	}
}
