package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/socketbus/socketbus/cluster"
)

// clusterSecurity is serve's flags for the routes between nodes (embedded
// NATS) or the connection to an existing NATS cluster (--nats): who may
// join the bus, and whether what crosses it is encrypted. SECURITY.md's
// cluster section says what each protects against.
type clusterSecurity struct {
	user, password         string
	tlsCert, tlsKey, tlsCA string
}

func (s *clusterSecurity) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.user, "cluster-user", "", "routes between nodes: the `user` a route from another node must give, and that this node gives (with --cluster-password; with --nats, the NATS user); with --cluster-direct, with the password, the key of the direct connections' hello")
	fs.StringVar(&s.password, "cluster-password", "", "routes between nodes: the `password` that goes with --cluster-user (prefer the environment variable: ps shows flags)")
	fs.StringVar(&s.tlsCert, "cluster-tls-cert", "", "routes between nodes speak TLS with the certificate in PEM `file`, both ways (with --cluster-tls-key; with --nats, the client certificate), and so do direct connections (--cluster-direct)")
	fs.StringVar(&s.tlsKey, "cluster-tls-key", "", "the private key of --cluster-tls-cert, a PEM `file`")
	fs.StringVar(&s.tlsCA, "cluster-tls-ca", "", "trust only the CA certificates in PEM `file` for routes, and require every other node to present a certificate they signed (mutual TLS; with --nats, the NATS servers' CA)")
}

// check refuses flags that go only in pairs, or only with others; direct
// connections (--cluster-direct) need the credentials, which key their
// hello.
func (s *clusterSecurity) check(external, direct bool) error {
	if (s.user == "") != (s.password == "") {
		return usagef("--cluster-user and --cluster-password go together")
	}
	if direct && s.password == "" {
		return usagef("--cluster-direct needs --cluster-user and --cluster-password: they key the direct connections' hello")
	}
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return usagef("--cluster-tls-cert and --cluster-tls-key go together")
	}
	if s.tlsCA != "" && s.tlsCert == "" && !external {
		return usagef("--cluster-tls-ca needs --cluster-tls-cert and --cluster-tls-key: routes speak TLS only with a certificate")
	}
	return nil
}

// apply sets cfg's route credentials and TLS (embedded NATS) or its NATS
// options (external), and gives the credentials to the routes this node
// opens. Direct connections (cfg.DirectListen) take the same credentials
// and TLS, in external mode too.
func (s *clusterSecurity) apply(cfg *cluster.Config) error {
	if cfg.NATSURL != "" {
		if s.user != "" {
			cfg.NATSOptions = append(cfg.NATSOptions, nats.UserInfo(s.user, s.password))
		}
		if s.tlsCert != "" {
			cfg.NATSOptions = append(cfg.NATSOptions, nats.ClientCert(s.tlsCert, s.tlsKey))
		}
		if s.tlsCA != "" {
			cfg.NATSOptions = append(cfg.NATSOptions, nats.RootCAs(s.tlsCA))
		}
		if cfg.DirectListen == "" {
			return nil
		}
		// Direct connections between nodes: the same credentials key
		// their hello, and the same certificate and CA make their TLS.
		cfg.RouteUser, cfg.RoutePassword = s.user, s.password
		return s.routeTLS(cfg)
	}
	cfg.RouteUser, cfg.RoutePassword = s.user, s.password
	if s.user != "" {
		for i, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return usagef("--routes %q: %w", r, err)
			}
			if u.User == nil {
				u.User = url.UserPassword(s.user, s.password)
				cfg.Routes[i] = u.String()
			}
		}
	}
	return s.routeTLS(cfg)
}

// routeTLS sets cfg.RouteTLS from the certificate, key and CA flags, if
// there is a certificate: for the routes and the direct connections.
func (s *clusterSecurity) routeTLS(cfg *cluster.Config) error {
	if s.tlsCert == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
	if err != nil {
		return usagef("--cluster-tls-cert/--cluster-tls-key: %w", err)
	}
	rt := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.tlsCA != "" {
		pool, err := certPool(s.tlsCA)
		if err != nil {
			return err
		}
		rt.RootCAs, rt.ClientCAs, rt.ClientAuth = pool, pool, tls.RequireAndVerifyClientCert
	}
	cfg.RouteTLS = rt
	return nil
}

func certPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--cluster-tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, usagef("--cluster-tls-ca %s: no PEM certificates in it", file)
	}
	return pool, nil
}

// describe says, for the startup log, how the routes are locked.
func (s *clusterSecurity) describe() string {
	auth, enc := "no credentials", "no TLS"
	if s.user != "" {
		auth = "credentials"
	}
	switch {
	case s.tlsCert != "" && s.tlsCA != "":
		enc = "mutual TLS"
	case s.tlsCert != "":
		enc = "TLS"
	}
	return fmt.Sprintf("%s, %s", auth, enc)
}
