package wsconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

// DialOptions configures Dial.
type DialOptions struct {
	// TLS configures a wss:// dial; nil uses the defaults.
	TLS *tls.Config
	// Origin, when set, is sent as the Origin header, as a browser would.
	Origin string
	// Dialer, when set, opens the TCP connection (its Control can set
	// socket options).
	Dialer *net.Dialer
}

// Dial opens a WebSocket to url (ws:// or wss://) and returns it as a
// net.Conn carrying socketbus frames.
func Dial(ctx context.Context, url string, o DialOptions) (net.Conn, error) {
	var raw net.Conn
	tr := &http.Transport{
		TLSClientConfig: o.TLS,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := o.Dialer
			if d == nil {
				d = &net.Dialer{}
			}
			nc, err := d.DialContext(ctx, network, addr)
			raw = nc
			return nc, err
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := tls.Dialer{NetDialer: o.Dialer, Config: o.TLS}
			nc, err := d.DialContext(ctx, network, addr)
			raw = nc
			return nc, err
		},
		ForceAttemptHTTP2: false,
	}
	defer tr.CloseIdleConnections()
	h := http.Header{}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	ws, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: tr},
		HTTPHeader:      h,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if res != nil {
			return nil, fmt.Errorf("socketbus: websocket dial %s: %s: %w", url, res.Status, err)
		}
		return nil, fmt.Errorf("socketbus: websocket dial %s: %w", url, err)
	}
	ws.SetReadLimit(-1) // the server's messages are not bounded
	return New(ws, raw), nil
}
