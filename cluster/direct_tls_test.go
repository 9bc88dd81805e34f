package cluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

// TestDirectTLS: nodes with route credentials and mutual TLS on their
// routes (RouteTLS) connect directly over TLS with it — each checks the
// other's certificate — and a request with a body of many frames crosses
// on the direct connection, none of its frames on NATS.
func TestDirectTLS(t *testing.T) {
	cert, pool := routeCert(t)
	routeTLS := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", tls: func(string) *tls.Config { return routeTLS }}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	if !n1.c.DirectTLS("n2") || !n2.c.DirectTLS("n1") {
		t.Fatalf("direct connections over TLS: n1 %v, n2 %v; want both", n1.c.DirectTLS("n2"), n2.c.DirectTLS("n1"))
	}
	serve(t, dial(t, n2, "sealed"), echo)
	callAllDirect(ctx, t, dial(t, n1, "sealed"), n1, n2)
}

// TestDirectTLSUntrusted: n1 (the node that dials) does not trust n2's
// certificate, while n2 trusts n1's, so the route n2 opens to n1 is up
// and the bus forms. n1's direct connections to n2 fail their TLS
// handshake, and the link stays on NATS: requests cross there, no frame
// on a direct connection.
func TestDirectTLSUntrusted(t *testing.T) {
	cert1, pool1 := routeCert(t)
	cert2, _ := routeCert(t)
	b := &testBus{t: t, direct: "127.0.0.1:0", tls: func(name string) *tls.Config {
		if name == "n1" {
			return &tls.Config{Certificates: []tls.Certificate{cert1}, RootCAs: pool1, MinVersion: tls.VersionTLS12}
		}
		return &tls.Config{Certificates: []tls.Certificate{cert2}, RootCAs: pool1, MinVersion: tls.VersionTLS12}
	}}
	startTestBus(b, 2)
	n1, n2 := b.node(0), b.node(1)
	failed := make(chan error, 1)
	n1.c.OnDirectDialFailed(func(peer string, err error) {
		select {
		case failed <- err:
		default:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-failed:
		var unknown x509.UnknownAuthorityError
		var verify *tls.CertificateVerificationError
		if !errors.As(err, &unknown) && !errors.As(err, &verify) {
			t.Fatalf("n1's dial of n2: %v, want a certificate it does not trust", err)
		}
	case <-ctx.Done():
		t.Fatal("n1 did not try to connect to n2")
	}
	serve(t, dial(t, n2, "untrusted"), echo)
	requester := dial(t, n1, "untrusted")
	_, nats1 := n1.c.DirectFrames()
	got, err := requester.Call(ctx, []byte("over NATS"))
	if err != nil || string(got) != "echo:over NATS" {
		t.Fatalf("a request between nodes that do not trust each other directly: %q, %v", got, err)
	}
	d1, v1 := n1.c.DirectFrames()
	d2, _ := n2.c.DirectFrames()
	if d1 != 0 || d2 != 0 || v1 == nats1 {
		t.Fatalf("frames: n1 read %d direct and %d more on NATS, n2 %d direct; want none direct", d1, v1-nats1, d2)
	}
	if up, _ := n1.c.DirectUp("n2"); up {
		t.Fatal("n1 has a direct connection to a node whose certificate it does not trust")
	}
}
