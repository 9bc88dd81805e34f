package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/socketbus/socketbus"
)

// reloadable is what serve reloads on SIGHUP: the --tokens file and the
// TLS certificate and key. Each is swapped whole through an atomic
// pointer, so a join sees the old settings or the new, never a mix, and
// connections already joined are not touched.
type reloadable struct {
	tokensFile        string
	certFile, keyFile string

	tokens atomic.Pointer[tokenTable]      // nil without --tokens
	cert   atomic.Pointer[tls.Certificate] // nil without TLS

	reloads, failures atomic.Int64                 // SIGHUPs handled, and those where a file failed
	last              atomic.Pointer[reloadResult] // the last reload's outcome, nil before the first
}

// reloadResult is how a reload went, for /status.
type reloadResult struct {
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"` // why a file failed to load; empty when all loaded
}

// newReloadable loads the tokens file and the certificate, if given.
func newReloadable(tokensFile, certFile, keyFile string) (*reloadable, error) {
	r := &reloadable{tokensFile: tokensFile, certFile: certFile, keyFile: keyFile}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, usagef("--tls-cert and --tls-key go together")
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, usagef("loading TLS certificate: %w", err)
		}
		r.cert.Store(&cert)
	}
	if tokensFile != "" {
		t, err := loadTokens(tokensFile)
		if err != nil {
			return nil, err
		}
		r.tokens.Store(t)
	}
	return r, nil
}

// tlsConfig returns the server's TLS configuration, which presents the
// certificate loaded last, or nil without TLS.
func (r *reloadable) tlsConfig() *tls.Config {
	if r.cert.Load() == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}

// authenticate is a server.Config.Authenticate over the tokens loaded last.
func (r *reloadable) authenticate(client, channel socketbus.ID, token string) error {
	return r.tokens.Load().authenticate(client, channel, token)
}

// name returns the channel's name in the tokens loaded last, or "".
func (r *reloadable) name(channel socketbus.ID) string {
	return r.tokens.Load().name(channel)
}

// reload reads the tokens file and the certificate again. Each is
// replaced only if it loads: a file that fails leaves its old settings in
// place, and the error says which and why.
func (r *reloadable) reload(log *slog.Logger) error {
	var errs []error
	if r.tokensFile != "" {
		if t, err := loadTokens(r.tokensFile); err != nil {
			errs = append(errs, err)
			log.Error("reload: keeping the old tokens", "file", r.tokensFile, "err", err)
		} else {
			r.tokens.Store(t)
			log.Info("reload: tokens replaced", "file", r.tokensFile, "channels", len(t.tokens))
		}
	}
	if r.certFile != "" {
		if cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile); err != nil {
			errs = append(errs, fmt.Errorf("TLS certificate: %w", err))
			log.Error("reload: keeping the old TLS certificate", "cert", r.certFile, "key", r.keyFile, "err", err)
		} else {
			r.cert.Store(&cert)
			log.Info("reload: TLS certificate replaced", "cert", r.certFile)
		}
	}
	r.reloads.Add(1)
	res := &reloadResult{At: time.Now()}
	defer r.last.Store(res)
	if len(errs) > 0 {
		r.failures.Add(1)
		err := fmt.Errorf("reload: %d of the files failed to load: %w", len(errs), errs[0])
		res.Error = err.Error()
		return err
	}
	return nil
}
