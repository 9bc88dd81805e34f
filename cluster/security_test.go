package cluster_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/server"
)

// routeCert makes a self-signed certificate for 127.0.0.1, good for both
// ends of a route.
func routeCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "socketbus node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestRoutesWithCredentialsAndTLS: nodes whose routes need a password and
// speak mutual TLS form a bus and carry a request.
func TestRoutesWithCredentialsAndTLS(t *testing.T) {
	cert, pool := routeCert(t)
	routeTLS := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	cfg := func(node string, routes []string) cluster.Config {
		return cluster.Config{Name: "secure", Node: node, Listen: "127.0.0.1:0", Routes: routes,
			RouteUser: "bus", RoutePassword: "route-s3cret", RouteTLS: routeTLS}
	}
	n1 := newNode(t, cfg("n1", nil))
	url := strings.Replace(n1.RouteURL(), "nats://", "nats://bus:route-s3cret@", 1)
	n2 := newNode(t, cfg("n2", []string{url}))
	waitNodes(t, n1, 2)
	waitNodes(t, n2, 2)
	b := &testBus{t: t}
	t.Cleanup(b.close)
	s1, s2 := b.serveNode(n1), b.serveNode(n2)
	serve(t, dial(t, s2, "secure"), echo)
	got, err := dial(t, s1, "secure").Call(context.Background(), []byte("sealed"))
	if err != nil || string(got) != "echo:sealed" {
		t.Fatalf("a request over TLS routes: %q, %v", got, err)
	}
}

// TestEmbeddedClientPortAdmitsOnlyTheNode: the embedded nats-server's
// client port (on loopback, which NATS routing needs) refuses anyone but
// the node itself, so no local process can publish on the bus's subjects.
func TestEmbeddedClientPortAdmitsOnlyTheNode(t *testing.T) {
	n := newNode(t, cluster.Config{Name: "bus", Node: "n1", Listen: "127.0.0.1:0"})
	srv := server.New(server.Config{Cluster: n})
	defer srv.Close()
	for _, opts := range [][]nats.Option{nil, {nats.UserInfo("socketbus", "guess")}} {
		nc, err := nats.Connect(n.ClientURL(), append(opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Fatalf("a stranger connected to the embedded nats-server")
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("connecting as a stranger: %v, want an authorization error", err)
		}
	}
}
