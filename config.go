package socketbus

import (
	"time"
)

// ServerConfig configures a Server. The zero value is a working
// configuration: every zero field takes the default its comment gives.
type ServerConfig struct {
	// DefaultTimeout applies to requests sent with no deadline (timeout 0
	// on the wire). Zero means 30 s.
	DefaultTimeout time.Duration

	// MaxMessageBytes caps every request and response body. A larger body
	// fails with ErrTooLarge at its sender and an error at its reader.
	// Zero means no limit: bodies of any size stream through.
	MaxMessageBytes int64

	// MaxChannelQueueBytes caps the request-body bytes the server accepts
	// for requests queued on one channel before a receiver takes them.
	// Past it, senders wait for credit. Zero means 64 MiB.
	MaxChannelQueueBytes int64

	// WriteTimeout is how long a connection may accept no bytes before the
	// server cuts it off; the requests it held fail with ErrPeerGone. Zero
	// means 10 s.
	WriteTimeout time.Duration
}

// Defaults of ServerConfig's zero fields.
const (
	DefaultRequestTimeout       = 30 * time.Second
	DefaultMaxChannelQueueBytes = 64 << 20
	DefaultWriteTimeout         = 10 * time.Second
)

// withDefaults returns cfg with every zero field set to its default.
func (cfg ServerConfig) withDefaults() ServerConfig {
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = DefaultRequestTimeout
	}
	if cfg.MaxChannelQueueBytes <= 0 {
		cfg.MaxChannelQueueBytes = DefaultMaxChannelQueueBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return cfg
}

// DialOption configures Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	clientID ID
}

// WithClientID makes the client join with id instead of a fresh random ID.
// The server refuses a second connection with an ID already connected.
func WithClientID(id ID) DialOption {
	return func(o *dialOptions) { o.clientID = id }
}
