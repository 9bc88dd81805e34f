package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
)

// clientTLS returns the TLS configuration for a client of server, or nil
// when none of the TLS flags asks for TLS.
func clientTLS(server string, useTLS bool, caFile string, insecure bool) (*tls.Config, error) {
	if !useTLS && caFile == "" && !insecure {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if host, _, err := net.SplitHostPort(server); err == nil {
		cfg.ServerName = host
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usagef("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--tls-ca %s: no PEM certificates in it", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
