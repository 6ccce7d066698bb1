package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/ratelimit"
	"github.com/scgate/scgate/proxy/ratelimit/redistest"
)

func fleetConfig(t *testing.T, upstream, redisAddr, prefix string) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
static = "svc"
[limits]
rate = 1
burst = 2
backend = "redis"
[limits.redis]
address = %q
timeout = "2s"
fallback_share = 0.5
%s`, upstream, redisAddr, prefix)
	cfg, err := config.Parse("config.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func fleetLimiter(t *testing.T, cfg *config.Config) *ratelimit.Limiter {
	t.Helper()
	o, err := cfg.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ratelimit.NewRedis(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rb.Close() })
	l, err := ratelimit.New(ratelimit.Options{Limits: cfg.Limits.RateLimits(), Backend: rb})
	if err != nil {
		t.Fatal(err)
	}
	if !rb.Up() {
		t.Fatal("the Redis backend is not up")
	}
	return l
}

// TestRedisFleetsDoNotShareBucketsByDefault: two fleets in front of
// different broadcasters, on one Redis, with no key_prefix written: one
// fleet's exhausted caller bucket and upstream pause do not reach the other.
func TestRedisFleetsDoNotShareBucketsByDefault(t *testing.T) {
	srv := redistest.Start(t)
	a := fleetLimiter(t, fleetConfig(t, "https://radio-a.example:1030", srv.Addr, ""))
	b := fleetLimiter(t, fleetConfig(t, "https://radio-b.example:1030", srv.Addr, ""))
	ctx := context.Background()
	for i := range 2 {
		if d, err := a.Decide(ctx, "svc", "k"); err != nil || !d.Allowed {
			t.Fatalf("fleet A request %d: %+v %v", i+1, d, err)
		}
	}
	if d, _ := a.Decide(ctx, "svc", "k"); d.Allowed {
		t.Fatal("fleet A's third request inside a second was allowed: the test does not reach the limit")
	}
	if err := a.Pause(ctx, "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if d, err := b.Decide(ctx, "svc", "k"); err != nil || !d.Allowed {
		t.Fatalf("fleet B's first request after fleet A spent its bucket and paused its key: %+v %v", d, err)
	}
}

// TestCheckWarnsOnDefaultKeyPrefix: scgate check says when fleets could
// share buckets, and is quiet when the prefix is the fleet's own.
func TestCheckWarnsOnDefaultKeyPrefix(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		prefix string
		warn   bool
	}{{"", true}, {`key_prefix = "fleet-a:"`, false}} {
		cfg := fleetConfig(t, "https://radio.example:1030", srv.Addr, tc.prefix)
		// What scgate check prints as a warning.
		w := cfg.KeyPrefixWarning()
		if got := strings.Contains(w, "key_prefix is not set"); got != tc.warn {
			t.Errorf("%q: warning %v, want %v: %s", tc.prefix, got, tc.warn, w)
		}
	}
	a := fleetConfig(t, "https://radio-a.example:1030", srv.Addr, "")
	b := fleetConfig(t, "https://RADIO-A.example:1030/", srv.Addr, "")
	if a.KeyPrefix() != b.KeyPrefix() {
		t.Errorf("one origin, two prefixes: %q and %q", a.KeyPrefix(), b.KeyPrefix())
	}
}

func parseTestVault(t *testing.T) *keyvault.Vault {
	t.Helper()
	v, _, err := keyvault.Parse("keys.toml", []byte(goodVault), keyvault.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
