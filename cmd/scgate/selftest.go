package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
)

// tour is what the selftest drives: the gateway from outside, the stand-in
// to see what arrived, the vault file to rotate.
type tour struct {
	base      string
	standin   *standin.Server // the north panel
	south     *standin.Server // the south panel
	gw        *gateway.Gateway
	vaultPath string
}

type step struct {
	name string
	run  func(ctx context.Context, t tour) error
}

var steps = []step{
	{"read: GET history with no key; the broadcaster saw playlist-sync's key", stepRead},
	{"read: GET playlists (a key-protected read)", stepReadProtected},
	{"create: POST a playlist", stepCreate},
	{"two panels: a caller with a key on each reads both, and each panel saw only its own key", stepTwoPanels},
	{"panels: naming none, an unknown one (404 unknown_panel) or one without a key (403 panel_forbidden) reaches neither", stepPanelRefusals},
	{"a caller with no key in the vault gets 403 forbidden", stepNoKey},
	{"an unknown caller gets 401 unauthenticated", stepUnknown},
	{"a caller whose key has only expired versions gets 503 no_valid_key", stepExpired},
	{"live rotation: a new version is used within a second, then the old key is revoked", stepRotate},
	{"a read-only caller gets 403 forbidden for a POST outside its rule set", stepForbiddenRoute},
	{"a caller over its rate gets 429 rate_limited with Retry-After and RateLimit headers", stepRateLimited},
	{"cache: the channel list read twice reaches the broadcaster once; the second answer says hit", stepCached},
	{"a caller scoped to station 3 reads and creates on station 3", stepStationOwn},
	{"the caller scoped to station 3 is refused station 4 every way, before the broadcaster", stepStationOther},
}

func runSelftest(ctx context.Context, w io.Writer, t tour) error {
	failed := 0
	for i, s := range steps {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := s.run(sctx, t)
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(w, "FAIL %d. %s: %v\n", i+1, s.name, err)
			continue
		}
		fmt.Fprintf(w, "ok   %d. %s\n", i+1, s.name)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(steps)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("selftest: %d of %d steps failed", failed, len(steps))
	}
	return nil
}

// clientFrom returns an HTTP client whose connections leave from the given
// loopback address, which is how the demo's cidr resolver tells callers apart.
func clientFrom(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func call(ctx context.Context, from, method, url, body string) (reply, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := clientFrom(from).Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}, err
}

// lastSeen is the key prefixes of the last request the stand-in received.
func lastSeen(s *standin.Server) ([]string, error) {
	reqs := s.Requests()
	if len(reqs) == 0 {
		return nil, errors.New("the stand-in received nothing")
	}
	return reqs[len(reqs)-1].KeyPrefixes, nil
}

func expectKey(s *standin.Server, want string) error {
	got, err := lastSeen(s)
	if err != nil {
		return err
	}
	if !slices.Equal(got, []string{keyvault.Prefix(want)}) {
		return fmt.Errorf("the stand-in saw key prefixes %v, want [%s]", got, keyvault.Prefix(want))
	}
	return nil
}

func stepRead(ctx context.Context, t tour) error {
	r, err := call(ctx, demoAddrSync, "GET", t.base+"/api/v2/history/?limit=2&server=1", "")
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("status %d: %s", r.status, r.body)
	}
	var page struct {
		Next    string            `json:"next"`
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil {
		return fmt.Errorf("body is not the pagination envelope: %w", err)
	}
	if len(page.Results) != 2 || !strings.HasPrefix(page.Next, t.base+"/api/v2/history/") {
		return fmt.Errorf("want 2 results and a next link through scgate, got %d and %q", len(page.Results), page.Next)
	}
	return expectKey(t.standin, demoKeyAdmin)
}

func stepReadProtected(ctx context.Context, t tour) error {
	if err := readPlaylists(ctx, t); err != nil {
		return err
	}
	return expectKey(t.standin, demoKeyAdmin)
}

func readPlaylists(ctx context.Context, t tour) error {
	r, err := call(ctx, demoAddrSync, "GET", t.base+"/api/v2/playlists/?server=1", "")
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("status %d: %s", r.status, r.body)
	}
	return nil
}

func stepCreate(ctx context.Context, t tour) error {
	r, err := call(ctx, demoAddrSync, "POST", t.base+"/api/v2/playlists/", `{"name":"Selftest","is_random":true,"server":1}`)
	if err != nil {
		return err
	}
	if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"Selftest"`) {
		return fmt.Errorf("status %d: %s", r.status, r.body)
	}
	return expectKey(t.standin, demoKeyAdmin)
}

// expectGatewayError checks a §5 error: status, Scgate-Error and the JSON
// body, and that nothing reached the stand-in.
func expectGatewayError(ctx context.Context, t tour, from, code string, status int) error {
	before := len(t.standin.Requests())
	r, err := call(ctx, from, "GET", t.base+"/api/v2/playlists/?server=1", "")
	if err != nil {
		return err
	}
	var body struct{ Error, Message, RequestID string }
	_ = json.Unmarshal(r.body, &body)
	switch {
	case r.status != status:
		return fmt.Errorf("status %d, want %d: %s", r.status, status, r.body)
	case r.header.Get("Scgate-Error") != code || body.Error != code:
		return fmt.Errorf("error code %q / %q, want %q", r.header.Get("Scgate-Error"), body.Error, code)
	case len(t.standin.Requests()) != before:
		return errors.New("the request reached the stand-in")
	}
	return nil
}

func stepNoKey(ctx context.Context, t tour) error {
	return expectGatewayError(ctx, t, demoAddrReporter, "forbidden", http.StatusForbidden)
}

func stepUnknown(ctx context.Context, t tour) error {
	return expectGatewayError(ctx, t, demoAddrStranger, "unauthenticated", http.StatusUnauthorized)
}

func stepExpired(ctx context.Context, t tour) error {
	return expectGatewayError(ctx, t, demoAddrArchiver, "no_valid_key", http.StatusServiceUnavailable)
}

func stepRotate(ctx context.Context, t tour) error {
	// Ops create the new key in the panel first, then put it in the vault.
	t.standin.SetKeys([]string{demoKeyAdmin, demoKeyRotated})
	start := time.Now()
	if err := writeDemoVault(t.vaultPath, demoVaultData{
		Admin: demoKeyAdmin, Rotated: demoKeyRotated, Expired: demoKeyExpired, South: demoKeySouth,
		RotatedFrom: start.Add(-time.Second).UTC().Format(time.RFC3339),
	}); err != nil {
		return err
	}
	want := keyvault.Prefix(demoKeyRotated)
	for {
		v, err := t.gw.Vault().Select("playlist-sync", time.Now())
		if err == nil && v.Secret.Prefix() == want {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("the gateway did not pick up the new vault")
		case <-time.After(10 * time.Millisecond):
		}
	}
	took := time.Since(start)
	if took > time.Second {
		return fmt.Errorf("the new version took %v to apply, want under 1s", took)
	}
	if err := readPlaylists(ctx, t); err != nil {
		return fmt.Errorf("after the vault change: %w", err)
	}
	if err := expectKey(t.standin, demoKeyRotated); err != nil {
		return err
	}
	// Now ops revoke the old key; requests keep working.
	t.standin.SetKeys([]string{demoKeyRotated})
	if err := readPlaylists(ctx, t); err != nil {
		return fmt.Errorf("after revoking the old key: %w", err)
	}
	return expectKey(t.standin, demoKeyRotated)
}

func stepForbiddenRoute(ctx context.Context, t tour) error {
	before := len(t.standin.Requests())
	r, err := call(ctx, demoAddrStats, "POST", t.base+"/api/v2/playlists/", `{"name":"Nope","is_random":true,"server":1}`)
	if err != nil {
		return err
	}
	switch {
	case r.status != http.StatusForbidden || r.header.Get("Scgate-Error") != "forbidden":
		return fmt.Errorf("status %d, Scgate-Error %q: %s", r.status, r.header.Get("Scgate-Error"), r.body)
	case !strings.Contains(string(r.body), `\"readonly\"`):
		return fmt.Errorf("the error does not name the rule set: %s", r.body)
	case len(t.standin.Requests()) != before:
		return errors.New("the forbidden request reached the stand-in")
	}
	return nil
}

func stepRateLimited(ctx context.Context, t tour) error {
	// stats has a burst of 2 at one request per 10 seconds: the third is refused.
	for i := range 2 {
		r, err := call(ctx, demoAddrStats, "GET", t.base+"/api/v2/history/?limit=1&server=1", "")
		if err != nil {
			return err
		}
		if r.status != http.StatusOK || r.header.Get("RateLimit") == "" {
			return fmt.Errorf("request %d: status %d, RateLimit %q", i+1, r.status, r.header.Get("RateLimit"))
		}
	}
	before := len(t.standin.Requests())
	r, err := call(ctx, demoAddrStats, "GET", t.base+"/api/v2/history/?limit=1&server=1", "")
	if err != nil {
		return err
	}
	switch {
	case r.status != http.StatusTooManyRequests || r.header.Get("Scgate-Error") != "rate_limited":
		return fmt.Errorf("3rd request: status %d: %s", r.status, r.body)
	case r.header.Get("Retry-After") != "10" || r.header.Get("RateLimit-Policy") != `"caller";q=2;w=20`:
		return fmt.Errorf("Retry-After %q, RateLimit-Policy %q; want 10 and \"caller\";q=2;w=20",
			r.header.Get("Retry-After"), r.header.Get("RateLimit-Policy"))
	case len(t.standin.Requests()) != before:
		return errors.New("the refused request reached the stand-in")
	}
	return nil
}

func stepTwoPanels(ctx context.Context, t tour) error {
	r, err := call(ctx, demoAddrNetwork, "GET", t.base+"/panels/north/api/v2/playlists/?server=1", "")
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("north: status %d: %s", r.status, r.body)
	}
	if err := expectKey(t.standin, demoKeyAdmin); err != nil {
		return fmt.Errorf("north: %w", err)
	}
	r, err = call(ctx, demoAddrNetwork, "GET", t.base+"/panels/south/api/v2/history/?limit=2&server=1", "")
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("south: status %d: %s", r.status, r.body)
	}
	var page struct {
		Next string `json:"next"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || !strings.HasPrefix(page.Next, t.base+"/panels/south/api/v2/history/") {
		return fmt.Errorf("south: the next link %q does not come back to the south panel through scgate", page.Next)
	}
	if err := expectKey(t.south, demoKeySouth); err != nil {
		return fmt.Errorf("south: %w", err)
	}
	for _, rq := range t.standin.Requests() {
		if slices.Contains(rq.KeyPrefixes, keyvault.Prefix(demoKeySouth)) {
			return errors.New("the south key reached the north panel")
		}
	}
	for _, rq := range t.south.Requests() {
		if slices.Contains(rq.KeyPrefixes, keyvault.Prefix(demoKeyAdmin)) {
			return errors.New("the north key reached the south panel")
		}
	}
	return nil
}

func stepPanelRefusals(ctx context.Context, t tour) error {
	before := len(t.standin.Requests()) + len(t.south.Requests())
	for _, c := range []struct {
		from, path, code string
		status           int
	}{
		{demoAddrNetwork, "/api/v2/history/", "unknown_panel", http.StatusNotFound},
		{demoAddrNetwork, "/panels/west/api/v2/history/", "unknown_panel", http.StatusNotFound},
		{demoAddrSync, "/panels/south/api/v2/history/", "panel_forbidden", http.StatusForbidden},
	} {
		r, err := call(ctx, c.from, "GET", t.base+c.path, "")
		if err != nil {
			return err
		}
		if r.status != c.status || r.header.Get("Scgate-Error") != c.code {
			return fmt.Errorf("%s from %s: status %d, Scgate-Error %q; want %d %s", c.path, c.from, r.status, r.header.Get("Scgate-Error"), c.status, c.code)
		}
	}
	if len(t.standin.Requests())+len(t.south.Requests()) != before {
		return errors.New("a refused request reached a panel")
	}
	return nil
}

func stepCached(ctx context.Context, t tour) error {
	url := t.base + "/api/v2/channels/?server=1"
	before := len(t.standin.Requests())
	var statuses []string
	for range 2 {
		r, err := call(ctx, demoAddrSync, "GET", url, "")
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("status %d: %s", r.status, r.body)
		}
		statuses = append(statuses, r.header.Get("Cache-Status"))
	}
	if n := len(t.standin.Requests()) - before; n != 1 {
		return fmt.Errorf("the stand-in saw %d requests, want 1", n)
	}
	if statuses[0] != "scgate; fwd=miss; stored" || !strings.HasPrefix(statuses[1], "scgate; hit; ttl=") {
		return fmt.Errorf("Cache-Status %q", statuses)
	}
	return nil
}
