//go:build unix

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTLSAndTokens runs serve with a certificate and a tokens file: a
// client with the CA and the channel's token gets through, a wrong token
// is refused (status 8), and a client that does not speak TLS or does not
// trust the certificate cannot connect (status 6).
func TestTLSAndTokens(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cert, key := writeCertificate(t, dir)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# test tokens\nsecure s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The certificate and key come from the environment, the tokens from a flag.
	srv := startServer(t, bin, []string{"SOCKETBUS_TLS_CERT=" + cert, "SOCKETBUS_TLS_KEY=" + key}, "--tokens", tokens)
	startReceiver(t, bin, srv, "--channel", "secure", "--tls-ca", cert, "--token", "s3cret", "--exec", "tr a-z A-Z")

	send := func(env []string, args ...string) result {
		t.Helper()
		return runCmd(t, bin, env, "", append([]string{"send", "--server", srv.addr, "--channel", "secure", "--data", "psst"}, args...)...)
	}
	checkSuccess(t, send(nil, "--tls-ca", cert, "--token", "s3cret"), "PSST")
	checkSuccess(t, send([]string{"SOCKETBUS_TOKEN=s3cret", "SOCKETBUS_TLS_CA=" + cert}), "PSST")
	checkFailure(t, send(nil, "--tls-ca", cert, "--token", "guess"), exitUnauthorized, "unauthorized")
	checkFailure(t, send(nil, "--tls-ca", cert), exitUnauthorized, "unauthorized")
	checkFailure(t, send(nil, "--tls", "--token", "s3cret"), exitUnreachable, "certificate")
	checkFailure(t, send(nil, "--token", "s3cret"), exitUnreachable, "")

	res := runCmd(t, bin, nil, "", "receive", "--server", srv.addr, "--channel", "secure", "--tls-insecure", "--token", "nope")
	checkFailure(t, res, exitUnauthorized, "unauthorized")
}

// writeCertificate writes a self-signed certificate for 127.0.0.1 and its
// key to dir and returns their paths.
func writeCertificate(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "socketbus test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestServeUsage checks serve refuses bad settings, from flags or the
// environment, with status 2.
func TestServeUsage(t *testing.T) {
	bin := buildBinary(t)
	for _, tt := range []struct {
		env  []string
		args []string
	}{
		{[]string{"SOCKETBUS_MAX_MESSAGE_BYTES=lots"}, nil},
		{nil, []string{"--log-format", "xml"}},
		{nil, []string{"--tls-cert", "only-a-cert.pem"}},
		{nil, []string{"--tokens", "/does/not/exist"}},
		{nil, []string{"--max-connections", "-1"}},
	} {
		res := runCmd(t, bin, tt.env, "", append([]string{"serve", "--addr", "127.0.0.1:0"}, tt.args...)...)
		checkFailure(t, res, exitUsage, "--help")
	}
}
