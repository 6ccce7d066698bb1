package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// client sends hand-written HTTP/1.1 requests, so that a check controls the
// exact casing and number of header lines a proxy receives.
type client struct {
	roots *x509.CertPool // for https targets
}

func newClient(certFile string) (*client, error) {
	if certFile == "" {
		return &client{}, nil
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &client{roots: roots}, nil
}

// do sends raw (a request without Host and Connection lines, which it adds)
// to base and returns the status and body.
func (c *client) do(ctx context.Context, base, method, path string, header []string, body string) (int, []byte, error) {
	u, err := url.Parse(base)
	if err != nil {
		return 0, nil, err
	}
	if err := checkLoopbackURL(base); err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if u.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{RootCAs: c.roots, ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			return 0, nil, err
		}
		conn = tc
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, u.Host)
	for _, h := range header {
		req.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	req.WriteString("\r\n" + body)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// upstreamStatsAt reads the upstream's counters.
func (c *client) upstreamStatsAt(ctx context.Context, base string) (upstreamStats, error) {
	code, body, err := c.do(ctx, base, "GET", "/__bench/stats", nil, "")
	if err != nil {
		return upstreamStats{}, err
	}
	if code != http.StatusOK {
		return upstreamStats{}, fmt.Errorf("upstream stats: status %d", code)
	}
	var s upstreamStats
	return s, json.Unmarshal(body, &s)
}

// check is one step of the same-job checks.
type check struct {
	what   string
	method string
	header []string
	body   string
	want   int
	// wantBody: the answer must be the upstream's playlists body.
	wantBody bool
}

// directChecks prove the upstream needs the key.
var directChecks = []check{
	{what: "no key is refused", method: "GET", want: 403},
	{what: "two copies of the right key are refused", method: "GET", header: []string{"SC-API-KEY: " + benchKey, "sc-api-key: " + benchKey}, want: 403},
	{what: "the key is accepted", method: "GET", header: []string{"SC-API-KEY: " + benchKey}, want: 200, wantBody: true},
}

// proxyChecks prove a proxy does the job: its key replaces whatever the
// caller sent, in any case and any number of copies.
var proxyChecks = []check{
	{what: "GET without a key", method: "GET", want: 200, wantBody: true},
	{what: "a wrong lower-case key is replaced", method: "GET", header: []string{"sc-api-key: wrong"}, want: 200, wantBody: true},
	{what: "two wrong keys are replaced", method: "GET", header: []string{"SC-API-KEY: wrong1", "Sc-Api-Key: wrong2"}, want: 200, wantBody: true},
	{what: "POST reaches the upstream", method: "POST", body: `{"name":"bench","server":1}`, want: 201},
}

// checkTarget runs the same-job checks against t and makes sure the upstream
// refused none of the proxy's requests.
func (c *client) checkTarget(ctx context.Context, t *target, upstreamURL string) error {
	checks := proxyChecks
	if t.proc == nil {
		checks = directChecks
	}
	before, err := c.upstreamStatsAt(ctx, upstreamURL)
	if err != nil {
		return err
	}
	want := playlistsBody()
	for _, ch := range checks {
		code, body, err := c.do(ctx, t.URL, ch.method, "/api/v2/playlists/?server=1", ch.header, ch.body)
		if ch.method == "POST" {
			code, body, err = c.do(ctx, t.URL, ch.method, "/api/v2/playlists/", ch.header, ch.body)
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", t.Name, ch.what, err)
		}
		if code != ch.want || (ch.wantBody && !bytes.Equal(body, want)) {
			return fmt.Errorf("%s: %s: got %d %.200q, want %d", t.Name, ch.what, code, body, ch.want)
		}
	}
	after, err := c.upstreamStatsAt(ctx, upstreamURL)
	if err != nil {
		return err
	}
	if t.proc != nil && after.Denied != before.Denied {
		return fmt.Errorf("%s: the upstream refused %d of its requests: it did not replace the caller's key", t.Name, after.Denied-before.Denied)
	}
	return nil
}
