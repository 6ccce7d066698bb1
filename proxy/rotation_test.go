package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
)

func rotKey(caller string, i int) string {
	return fmt.Sprintf("Rot%s%04d.FAKEfakeFAKEfakeFAKEfakeFAKEfake", strings.ToUpper(caller), i)
}

// rotVault lists versions from..to of each caller's key; version i becomes
// valid at base+i seconds, so the highest listed one is active.
func rotVault(base time.Time, from, to int) string {
	var b strings.Builder
	b.WriteString("[callers]\n\"a\" = \"ka\"\n\"b\" = \"kb\"\n")
	for _, c := range []string{"a", "b"} {
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "\n[[keys.k%s]]\nsecret = %q\nnot_before = %s\n", c, rotKey(c, i),
				base.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339))
		}
	}
	return b.String()
}

// TestRotationUnderLoad: 8 clients send continuously while the vault file is
// rewritten 50 times (versions added and removed, an invalid file now and
// then). Every request must succeed, and the stand-in must only ever see a key
// of the caller's own, which it accepts.
func TestRotationUnderLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.toml")
	base := time.Now().Add(-time.Hour)
	writeFile(t, path, rotVault(base, 0, 0))

	si, err := standin.New(standin.Options{Keys: []string{rotKey("a", 0), rotKey("b", 0)}, MaxRecorded: 0})
	if err != nil {
		t.Fatal(err)
	}
	w, err := keyvault.NewWatcher(keyvault.WatcherOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- w.Run(ctx) }()
	defer func() { cancel(); <-watchDone }()

	e := newEnv(t, envOptions{upstream: si, vault: w})
	e.standin = si

	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for n := range 8 {
		caller := []string{"a", "b"}[n%2]
		wg.Go(func() {
			client := e.gateway.Client()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", e.gateway.URL+"/api/v2/playlists/?server=1", nil)
				req.Header.Set("X-Test-Caller", caller)
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, body))
				}
			}
		})
	}

	for i := 1; i <= 50; i++ {
		// Ops create the new keys in the panel first, and revoke an old one
		// only once every gateway has moved on: the stand-in keeps the four
		// previous versions valid, so a request that loaded its snapshot just
		// before a swap still carries an accepted key.
		var valid []string
		for j := max(0, i-4); j <= i; j++ {
			valid = append(valid, rotKey("a", j), rotKey("b", j))
		}
		si.SetKeys(valid)
		if i%10 == 5 {
			writeFile(t, path, "[callers]\n\"a\" = \"missing-key\"\n")
		}
		// Every other rotation also drops the oldest listed version.
		from := i - 1
		if i%2 == 0 {
			from = i
		}
		writeFile(t, path, rotVault(base, from, i))
		want := keyvault.Prefix(rotKey("a", i))
		waitFor(t, fmt.Sprintf("rotation %d to apply", i), 5*time.Second, func() bool {
			v, err := w.Current().Select("a", time.Now())
			return err == nil && v.Secret.Prefix() == want
		})
	}
	close(stop)
	wg.Wait()

	if failed.Load() != 0 {
		dumpRejected(t, si)
		t.Fatalf("%d of %d requests failed during rotation; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	reqs := si.Requests()
	if len(reqs) < 100 {
		t.Fatalf("only %d requests reached the stand-in: not much of a load", len(reqs))
	}
	for _, r := range reqs {
		caller := r.Header.Get("X-Test-Caller")
		if !r.Accepted || len(r.KeyPrefixes) != 1 || !strings.HasPrefix(r.KeyPrefixes[0], "Rot"+strings.ToUpper(caller)) {
			t.Fatalf("caller %q's request carried %v (accepted %v)", caller, r.KeyPrefixes, r.Accepted)
		}
	}
	t.Logf("%d requests during 50 rotations, 0 failures", sent.Load())
}

func dumpRejected(t *testing.T, si *standin.Server) {
	for i, r := range si.Requests() {
		if !r.Accepted {
			t.Logf("request %d of %d: %v rejected", i, len(si.Requests()), r.KeyPrefixes)
		}
	}
}
