package proxy_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// swapVault is a vault source the test replaces (a reload), which counts
// how often the gateway read it.
type swapVault struct {
	v     atomic.Pointer[keyvault.Vault]
	reads atomic.Int64
}

func newSwapVault(v *keyvault.Vault) *swapVault {
	s := &swapVault{}
	s.v.Store(v)
	return s
}

func (s *swapVault) Current() *keyvault.Vault {
	s.reads.Add(1)
	return s.v.Load()
}

// waitLimiter queues caller "admin" and "reader" behind a bucket of one
// request per 2 seconds.
func waitLimiter(t *testing.T) *ratelimit.Limiter {
	return newLimiter(t, ratelimit.Limits{Caller: ratelimit.CallerLimits{
		Bucket: ratelimit.Bucket{Rate: 0.5, Burst: 1}, Mode: ratelimit.Wait, MaxWait: time.Minute,
	}})
}

// queueOne spends the caller's token, then sends a second request that
// queues, and returns its answer once the gateway has read the vault for it
// (so that a swap from then on happens while it waits).
func queueOne(t *testing.T, e *env, sv *swapVault, caller, path string) <-chan *http.Response {
	t.Helper()
	if resp, body := e.do("GET", path, caller, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first request: %d %s", resp.StatusCode, body)
	}
	before := sv.reads.Load()
	out := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", e.gateway.URL+path, nil)
		req.Header.Set("X-Test-Caller", caller)
		resp, err := e.gateway.Client().Do(req)
		if err != nil {
			out <- nil
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out <- resp
	}()
	waitFor(t, "the queued request to read the vault", 10*time.Second, func() bool { return sv.reads.Load() > before })
	return out
}

// TestCallerRemovedWhileQueuedIsRefused: the caller is removed from the vault
// while its request waits for its token; after the wait the request is
// refused (403 forbidden) and the upstream never sees the key again.
func TestCallerRemovedWhileQueuedIsRefused(t *testing.T) {
	sv := newSwapVault(parseVault(t, testVault))
	e := newEnv(t, envOptions{vault: sv, limiter: waitLimiter(t)})
	answer := queueOne(t, e, sv, "reader", "/api/v2/playlists/")
	sent := len(e.standin.Requests())
	sv.v.Store(parseVault(t, "[callers]\n\"admin\" = \"admin\"\n[[keys.admin]]\nsecret = \""+keyAdmin+"\"\n"))
	resp := <-answer
	if resp == nil || resp.StatusCode != http.StatusForbidden || resp.Header.Get("Scgate-Error") != proxy.CodeForbidden {
		t.Fatalf("after the wait: %v, want 403 forbidden from scgate", resp)
	}
	if reqs := e.standin.Requests(); len(reqs) != sent {
		t.Fatalf("the upstream saw %v after the caller was removed", reqs[sent:])
	}
}

// TestVersionRemovedWhileQueuedIsNeverSent: a version removed from the vault
// (compromised) while a request waits is not the one it carries.
func TestVersionRemovedWhileQueuedIsNeverSent(t *testing.T) {
	sv := newSwapVault(parseVault(t, failoverVault))
	e := newFailoverEnv(t, failoverVault, 0, keyOld, keyNew)
	e2 := newEnv(t, envOptions{upstream: e.standin, vault: sv, limiter: waitLimiter(t)})
	e2.standin = e.standin
	answer := queueOne(t, e2, sv, "admin", "/api/v2/playlists/")
	if got := e2.lastUpstream().KeyPrefixes; !slices.Equal(got, []string{keyvault.Prefix(keyOld)}) {
		t.Fatalf("before the removal the active version is %v, want the old one", got)
	}
	sent := len(e.standin.Requests())
	sv.v.Store(parseVault(t, "[callers]\n\"admin\" = \"admin\"\n[[keys.admin]]\nsecret = \""+keyNew+"\"\n"))
	if resp := <-answer; resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the wait: %v", resp)
	}
	for _, r := range e.standin.Requests()[sent:] {
		if !slices.Equal(r.KeyPrefixes, []string{keyvault.Prefix(keyNew)}) {
			t.Fatalf("after the removal the upstream saw %v", r.KeyPrefixes)
		}
	}
}

// TestCancelledWaitersLeaveTheKeyBucket: 40 queued requests whose clients
// hang up give their tokens back, so that another caller of the same key is
// admitted at once and the upstream sees none of them.
func TestCancelledWaitersLeaveTheKeyBucket(t *testing.T) {
	const interval = 10 * time.Second
	lim := newLimiter(t, ratelimit.Limits{
		Key: ratelimit.Bucket{Rate: 0.1, Burst: 42},
		Callers: map[string]ratelimit.CallerLimits{
			"a":   {Bucket: ratelimit.Bucket{Rate: 0.1, Burst: 1}, Mode: ratelimit.Wait, MaxWait: time.Hour},
			"obs": {Bucket: ratelimit.Bucket{Rate: 0.001, Burst: 1}},
		},
	})
	e := newEnv(t, envOptions{vault: fixedVault{parseVault(t, sharedVault)}, limiter: lim})
	ctx := context.Background()
	// obs spends its one request (and one key token); afterwards its refusals
	// cost nothing and report how spent the key's bucket is.
	if a, err := lim.Admit(ctx, "obs", "shared"); err != nil || !a.Allowed {
		t.Fatalf("obs: %+v %v", a, err)
	}
	keySpent := func() time.Duration {
		d, err := lim.Decide(ctx, "obs", "shared")
		if err != nil || d.Allowed {
			t.Fatalf("obs: %+v %v", d, err)
		}
		return d.Key.Reset
	}
	if resp, body := e.do("GET", "/api/v2/history/", "a", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a's first request: %d %s", resp.StatusCode, body)
	}
	sent := len(e.standin.Requests())

	hctx, hangUp := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(hctx, "GET", e.gateway.URL+"/api/v2/history/", nil)
			req.Header.Set("X-Test-Caller", "a")
			if resp, err := e.gateway.Client().Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	waitFor(t, "40 queued requests holding the key's tokens", 10*time.Second, func() bool { return keySpent() > 41*interval })
	hangUp()
	wg.Wait()
	waitFor(t, "the tokens to come back", 10*time.Second, func() bool { return keySpent() < 3*interval })
	resp, body := e.do("GET", "/api/v2/history/", "b", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("another caller of the key: %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if n := len(e.standin.Requests()) - sent; n != 1 {
		t.Fatalf("the upstream saw %d requests after the first, want only b's", n)
	}
}

// TestRefusedAfterTheWaitGivesTokensBack: a request that waited for its
// tokens and is then refused (its caller was removed from the vault) is never
// sent, so the key token it took goes back to the bucket other callers share.
func TestRefusedAfterTheWaitGivesTokensBack(t *testing.T) {
	const keyInterval = 100 * time.Second // long beside the 2 s wait, so the refund stands out
	lim := newLimiter(t, ratelimit.Limits{
		Key: ratelimit.Bucket{Rate: 0.01, Burst: 5},
		Callers: map[string]ratelimit.CallerLimits{
			"a":   {Bucket: ratelimit.Bucket{Rate: 0.5, Burst: 1}, Mode: ratelimit.Wait, MaxWait: time.Minute},
			"obs": {Bucket: ratelimit.Bucket{Rate: 0.001, Burst: 1}},
		},
	})
	sv := newSwapVault(parseVault(t, sharedVault))
	e := newEnv(t, envOptions{vault: sv, limiter: lim})
	ctx := context.Background()
	if a, err := lim.Admit(ctx, "obs", "shared"); err != nil || !a.Allowed {
		t.Fatalf("obs: %+v %v", a, err)
	}
	keySpent := func() time.Duration {
		d, err := lim.Decide(ctx, "obs", "shared")
		if err != nil || d.Allowed {
			t.Fatalf("obs: %+v %v", d, err)
		}
		return d.Key.Reset
	}
	answer := queueOne(t, e, sv, "a", "/api/v2/history/")
	waitFor(t, "the queued request to take its key token", 10*time.Second, func() bool { return keySpent() > 2*keyInterval+keyInterval/2 })
	queued := keySpent()
	sent := len(e.standin.Requests())
	sv.v.Store(parseVault(t, "[callers]\n\"b\" = \"shared\"\n[[keys.shared]]\nsecret = \""+keyAdmin+"\"\n"))
	if resp := <-answer; resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after the wait: %v, want 403", resp)
	}
	if n := len(e.standin.Requests()) - sent; n != 0 {
		t.Fatalf("the upstream saw %d requests from the removed caller", n)
	}
	if got := keySpent(); got > queued-keyInterval/2 {
		t.Fatalf("the key's bucket is %v from full after the refusal, %v before: the token was not given back", got, queued)
	}
}
