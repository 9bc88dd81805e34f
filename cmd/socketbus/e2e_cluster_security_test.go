package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeRouteCertificate writes a self-signed certificate for 127.0.0.1,
// good for both ends of a route (server and client authentication), and
// its key, and returns their paths and a pool that trusts it.
func writeRouteCertificate(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
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
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "route.pem"), filepath.Join(dir, "route-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

// TestClusterRoutesLockedFromTheCLI (issue 17, findings 11 and 12): two
// serve nodes whose routes need a user and password (the password from the
// environment) and speak mutual TLS, all from serve's flags, form a bus and
// carry a request; their route port tells a stranger it requires both, and
// a TLS client without a certificate the CA signed is cut off.
func TestClusterRoutesLockedFromTheCLI(t *testing.T) {
	bin := buildBinary(t)
	cert, key, pool := writeRouteCertificate(t, t.TempDir())
	env := []string{"SOCKETBUS_CLUSTER_PASSWORD=route-s3cret"}
	secure := []string{"--cluster-name", "locked", "--cluster-user", "bus",
		"--cluster-tls-cert", cert, "--cluster-tls-key", key, "--cluster-tls-ca", cert}
	l1, l2 := freeLoopbackAddr(t), freeLoopbackAddr(t)
	n1 := startServer(t, bin, env, append([]string{"--node", "n1", "--cluster-listen", l1}, secure...)...)
	n2 := startServer(t, bin, env, append([]string{"--node", "n2", "--cluster-listen", l2, "--routes", "nats://" + l1}, secure...)...)
	n1.waitLine(n1.stderr, "node n2 joined the bus")
	if l := n1.stderr.line("security="); !strings.Contains(l, "credentials, mutual TLS") {
		t.Fatalf("n1's startup log says %q, want the routes' security: credentials, mutual TLS", l)
	}
	if strings.Contains(n1.stderr.String(), "route-s3cret") || strings.Contains(n2.stderr.String(), "route-s3cret") {
		t.Fatalf("a node logged the route password")
	}
	startReceiver(t, bin, n2, "--channel", "locked", "--exec", "tr a-z A-Z")
	res := runCmd(t, bin, nil, "", "send", "--server", n1.addr, "--channel", "locked", "--data", "sealed")
	if res.code != 0 || res.stdout != "SEALED" {
		t.Fatalf("send across the locked routes: status %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	// The route port speaks nothing in the clear: plain bytes get no INFO.
	nc, err := net.DialTimeout("tcp", l1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = nc.Write([]byte("CONNECT {}\r\nPING\r\n"))
	if line, err := bufio.NewReader(nc).ReadString('\n'); err == nil {
		t.Fatalf("the route port answered a plain connection: %q", line)
	}
	nc.Close()
	// TLS without a client certificate is cut off.
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l1,
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err == nil {
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = bufio.NewReader(tc).ReadString('\n')
		tc.Close()
	}
	if err == nil {
		t.Fatalf("a TLS route connection without a client certificate was answered")
	}
	// With the certificate but without the credentials: refused.
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	tc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l1,
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS with the node certificate: %v", err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(tc)
	info, err := br.ReadString('\n')
	if err != nil || !strings.Contains(info, `"auth_required":true`) {
		t.Fatalf("the route's INFO: %q, %v; want auth_required", info, err)
	}
	_, _ = tc.Write([]byte(`CONNECT {"verbose":false,"pedantic":false,"name":"stranger"}` + "\r\nPING\r\n"))
	answer, _ := br.ReadString('\n')
	if !strings.HasPrefix(answer, "-ERR") {
		t.Fatalf("a route with no credentials: got %q, want -ERR", answer)
	}
	t.Logf("a route with no credentials: %s", strings.TrimSpace(answer))
}

// TestClusterSecurityUsage: the route flags that only go in pairs are a
// usage error (status 2) alone.
func TestClusterSecurityUsage(t *testing.T) {
	bin := buildBinary(t)
	for _, args := range [][]string{
		{"--cluster-user", "bus"},
		{"--cluster-password", "x"},
		{"--cluster-tls-cert", "c.pem"},
		{"--cluster-tls-ca", "ca.pem"},
	} {
		all := append([]string{"serve", "--addr", "127.0.0.1:0", "--cluster-name", "b", "--node", "n1", "--cluster-listen", freeLoopbackAddr(t)}, args...)
		if res := runCmd(t, bin, nil, "", all...); res.code != 2 {
			t.Errorf("serve %v: status %d, want 2 (stderr %q)", args, res.code, res.stderr)
		}
	}
}
