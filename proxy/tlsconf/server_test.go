package tlsconf

import (
	"crypto/tls"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

func TestServerConfigValidation(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": ca.PEM})
	cas, err := NewClientCAs(ClientCAOptions{File: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	tests := []struct {
		name string
		opts ServerOptions
		want string
	}{
		{"no certificate source", ServerOptions{}, "GetCertificate is required"},
		{"client auth without CAs", ServerOptions{GetCertificate: get, ClientAuth: ClientAuthRequire}, "needs a client CA file"},
		{"unknown client auth", ServerOptions{GetCertificate: get, ClientCAs: cas, ClientAuth: "optional"}, `"optional" is not known`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ServerConfig(tt.opts)
			if cfg != nil {
				t.Errorf("got a config despite the error")
			}
			wantErrContains(t, err, tt.want)
		})
	}
}

func TestServerConfigDefaults(t *testing.T) {
	get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	cfg, err := ServerConfig(ServerOptions{GetCertificate: get})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x, want TLS 1.2", cfg.MinVersion)
	}
	if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos %q", cfg.NextProtos)
	}
	if cfg.ClientAuth != tls.NoClientCert || cfg.GetConfigForClient != nil {
		t.Errorf("client certificates asked for without ClientCAs")
	}

	protos := []string{"acme-tls/1", "http/1.1"}
	cfg, err = ServerConfig(ServerOptions{GetCertificate: get, NextProtos: protos})
	if err != nil {
		t.Fatal(err)
	}
	protos[0] = "changed"
	if cfg.NextProtos[0] != "acme-tls/1" {
		t.Errorf("NextProtos shares the caller's slice")
	}
}

// TestServerConfigCachesPerPool checks that handshakes share one config
// until the client-CA pool changes, and get a new one after.
func TestServerConfigCachesPerPool(t *testing.T) {
	caA := tlstest.NewCA(t, "client CA A")
	caB := tlstest.NewCA(t, "client CA B")
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": caA.PEM})
	cas, err := NewClientCAs(ClientCAOptions{File: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	outer, err := ServerConfig(ServerOptions{GetCertificate: get, ClientCAs: cas, ClientAuth: ClientAuthVerifyIfGiven})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := outer.GetConfigForClient(nil)
	second, _ := outer.GetConfigForClient(nil)
	if first != second {
		t.Errorf("a config was rebuilt although the pool did not change")
	}
	if first.ClientCAs != cas.Pool() || first.ClientAuth != tls.VerifyClientCertIfGiven || first.MinVersion != tls.VersionTLS12 {
		t.Errorf("per-handshake config: ClientCAs current=%v, ClientAuth %v, MinVersion %x",
			first.ClientCAs == cas.Pool(), first.ClientAuth, first.MinVersion)
	}

	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": caB.PEM})
	if err := cas.Reload(); err != nil {
		t.Fatal(err)
	}
	third, _ := outer.GetConfigForClient(nil)
	if third == first || third.ClientCAs != cas.Pool() {
		t.Errorf("the config did not follow the reloaded pool")
	}
}

// TestServerConfigClientAuth runs real handshakes for each client
// authentication mode and kind of client.
func TestServerConfigClientAuth(t *testing.T) {
	serverCA := tlstest.NewCA(t, "server CA")
	trusted := tlstest.NewCA(t, "trusted client CA")
	other := tlstest.NewCA(t, "other CA")
	serverPair, _, _ := serverCA.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}, Server: true})
	good, _, _ := trusted.Issue(t, tlstest.LeafOptions{CommonName: "good", Client: true})
	stranger, _, _ := other.Issue(t, tlstest.LeafOptions{CommonName: "stranger", Client: true})
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": trusted.PEM})
	cas, err := NewClientCAs(ClientCAOptions{File: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		cas      *ClientCAs
		mode     string
		client   []tls.Certificate
		wantBody string // "" means the handshake must fail
	}{
		{"require, trusted client", cas, "", []tls.Certificate{good}, "verified=1 peer=1 cn=good"},
		{"require, no certificate", cas, ClientAuthRequire, nil, ""},
		{"require, other CA", cas, ClientAuthRequire, []tls.Certificate{stranger}, ""},
		{"verify-if-given, trusted client", cas, ClientAuthVerifyIfGiven, []tls.Certificate{good}, "verified=1 peer=1 cn=good"},
		{"verify-if-given, no certificate", cas, ClientAuthVerifyIfGiven, nil, "verified=0 peer=0 cn="},
		{"verify-if-given, other CA", cas, ClientAuthVerifyIfGiven, []tls.Certificate{stranger}, ""},
		{"no client CAs, client offers one", nil, "", []tls.Certificate{good}, "verified=0 peer=0 cn="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ServerConfig(ServerOptions{GetCertificate: staticCert(&serverPair), ClientCAs: tt.cas, ClientAuth: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			url := serveTLS(t, cfg, nil)
			s, err := fetch(url, clientConfig(serverCA, tt.client...))
			switch {
			case tt.wantBody == "" && err == nil:
				t.Fatalf("handshake succeeded (%q), want it refused", s.body)
			case tt.wantBody == "":
				if !strings.Contains(err.Error(), "certificate") {
					t.Errorf("refused for an unexpected reason: %v", err)
				}
			case err != nil:
				t.Fatalf("request failed: %v", err)
			case s.body != tt.wantBody:
				t.Errorf("server saw %q, want %q", s.body, tt.wantBody)
			}
		})
	}
}

// TestServerRefusesCBCSuites: over TLS 1.2, a client offering only CBC
// suites (SHA-1 or SHA-256 MACs) is refused; one offering an AEAD suite of
// Mozilla's intermediate profile completes the handshake.
func TestServerRefusesCBCSuites(t *testing.T) {
	ca := tlstest.NewCA(t, "server CA")
	cert, _, _ := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}, Server: true})
	cfg, err := ServerConfig(ServerOptions{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }})
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, cfg, nil)
	tls12 := func(suites ...uint16) *tls.Config {
		c := clientConfig(ca)
		c.MaxVersion, c.CipherSuites = tls.VersionTLS12, suites
		return c
	}
	for _, suite := range []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	} {
		if _, err := fetch(url, tls12(suite)); err == nil {
			t.Errorf("a TLS 1.2 client offering only %s completed a handshake", tls.CipherSuiteName(suite))
		}
	}
	for _, suite := range []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	} {
		if _, err := fetch(url, tls12(suite)); err != nil {
			t.Errorf("a TLS 1.2 client offering %s: %v", tls.CipherSuiteName(suite), err)
		}
	}
	if _, err := fetch(url, clientConfig(ca)); err != nil {
		t.Errorf("a TLS 1.3 client: %v", err)
	}
}
