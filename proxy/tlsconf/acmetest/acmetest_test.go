package acmetest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, IgnoreLeaks()...)
}

// TestDirectoryBeforeAndAfterStart: the directory URL answers 503 until
// Start, then Pebble's ACME directory, over TLS verified with ServerCAFile.
func TestDirectoryBeforeAndAfterStart(t *testing.T) {
	p := New(t)
	pem, err := os.ReadFile(p.ServerCAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("ServerCAFile holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func() (int, string) {
		resp, err := client.Get(p.DirectoryURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("before Start: %d", code)
	}
	p.Start(Options{HTTPPort: 5002, TLSPort: 5001})
	if code, body := get(); code != http.StatusOK || !strings.Contains(body, "newNonce") {
		t.Fatalf("after Start: %d %s", code, body)
	}
	if p.Roots() == nil {
		t.Fatal("no root pool")
	}
}
