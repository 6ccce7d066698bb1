package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/proxy/ratelimit"
	"github.com/scgate/scgate/proxy/ratelimit/redistest"
)

func TestLimitsAndPolicyConfigErrors(t *testing.T) {
	base := "[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n"
	cases := []struct {
		name, cfg string
		want      []string
	}{
		{"negative rate", base + "[limits]\nrate = -1.0\n", []string{"config.toml:8:", "limits.rate", ">= 0"}},
		{"bad mode", base + "[limits]\nmode = \"queue\"\n", []string{"config.toml:8:", `"queue": use reject or wait`}},
		{"wait without max_wait", base + "[limits]\nmode = \"wait\"\nmax_wait = \"0s\"\n", []string{"config.toml:9:", "needs a max_wait"}},
		{"caller override", base + "[limits.callers.\"svc\"]\nconcurrency = -2\nmode = \"later\"\n", []string{"config.toml:8:", "limits.callers.svc.concurrency", "config.toml:9:", `"later"`}},
		{"key override", base + "[limits.keys.\"k\"]\nburst = -1\n", []string{"config.toml:8:", "limits.keys.k.burst"}},
		{"bad backend", base + "[limits]\nbackend = \"memcached\"\n", []string{"config.toml:8:", "use local or redis"}},
		{"redis without address or share", base + "[limits]\nbackend = \"redis\"\n", []string{"config.toml:8:", "address", "fallback_share"}},
		{"redis section with local backend", base + "[limits.redis]\naddress = \"127.0.0.1:6379\"\n", []string{"config.toml:7:", `backend is "local"`}},
		{"unknown limits setting", base + "[limits]\nrates = 1.0\n", []string{"config.toml:8:", `unknown setting "limits.rates"`}},
		{"bad rule", base + "[policy.sets]\nro = [\n  \"GET /api/v2/**\",\n  \"get /api/v2/\",\n]\n", []string{"config.toml:10:", "policy.sets.ro rule 2", "in capitals"}},
		{"rule without slash", base + "[policy.sets]\nro = [\"GET api/\"]\n", []string{"config.toml:8:", "must start with /"}},
		{"caller names a missing set", base + "[policy.callers]\n\"svc\" = \"nope\"\n", []string{"config.toml:8:", `rule set "nope" is not defined`}},
		{"missing default set", base + "[policy]\ndefault = \"ro\"\n", []string{"config.toml:8:", "policy.default"}},
		{"empty set", base + "[policy.sets]\nro = []\n", []string{"config.toml:8:", "allows nothing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, "check", "--config", writeConfig(t, c.cfg))
			if code != exitInvalid {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitInvalid, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestOverridesInheritAndCheckWarnsAboutStrangers(t *testing.T) {
	p := writeConfig(t, `
[upstream]
url = "https://radio.example:1030"
[vault]
file = "keys.toml"
[identity]
static = "svc"
[limits]
rate = 10.0
burst = 20
concurrency = 3
mode = "wait"
max_wait = "2s"
key_rate = 100
[limits.callers."svc"]
rate = 2.0
[limits.callers."ghost"]
mode = "reject"
[limits.keys."k"]
burst = 7
[policy.sets]
ro = ["GET /api/v2/**"]
[policy.callers]
"nobody" = "ro"
`)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	lim := cfg.Limits.RateLimits()
	svc := lim.ForCaller("svc")
	if svc.Rate != 2 || svc.Burst != 0 || svc.Concurrency != 3 || svc.Mode.String() != "wait" || svc.MaxWait != 2*time.Second {
		t.Fatalf("svc: %+v: the override must set the rate (with its own burst) and inherit the rest", svc)
	}
	if k := lim.ForKey("k"); k.Rate != 100 || k.Burst != 7 {
		t.Fatalf("key k: %+v", k)
	}
	// What scgate explain shows: the limits as applied, default burst filled in.
	applied, err := ratelimit.New(ratelimit.Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	a := applied.For("svc", "k")
	a.Backend = cfg.Limits.Backend
	if a.Caller.Burst != 2 || a.Key.Burst != 7 || a.Backend != "local" {
		t.Fatalf("applied: %+v", a)
	}
	code, out, errOut := run(t, "check", "--config", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{`config.toml:17: caller "ghost" is not in the vault`, `config.toml:24: caller "nobody" is not in the vault`} {
		if !strings.Contains(errOut, w) {
			t.Errorf("check's warnings lack %q:\n%s%s", w, out, errOut)
		}
	}
}

// TestSIGHUPReloadsLimitsAndPolicyLive: a reload applies new limits and a new
// route policy at once, and the caller whose limits did not change keeps its
// (spent) bucket.
func TestSIGHUPReloadsLimitsAndPolicyLive(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	cfgText := fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
static = "svc"
[limits]
rate = 0.01
burst = 2
`, up.URL)
	p := writeConfig(t, cfgText)
	hup := make(chan os.Signal, 1)
	g, _ := startGatewayWith(t, p, zap.New(core), hup)
	base := "http://" + g.Addr().String()
	for i, want := range []int{200, 200, 429} {
		if code, body := get(t, http.DefaultClient, base+"/api/v2/history/"); code != want {
			t.Fatalf("request %d: %d, want %d: %s", i+1, code, want, body)
		}
	}
	// New config: svc's limits unchanged, a limit for another caller, and a
	// read-only policy for svc.
	if err := os.WriteFile(p, []byte(cfgText+`[limits.callers."other"]
rate = 5.0
[policy.sets]
ro = ["GET /api/v2/**"]
[policy.callers]
"svc" = "ro"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	waitUntil(t, "the reload", func() bool {
		return logs.FilterMessage("route policy reloaded").Len() == 1 && logs.FilterMessage("limits reloaded").Len() == 1
	})
	if code, _ := get(t, http.DefaultClient, base+"/api/v2/history/"); code != http.StatusTooManyRequests {
		t.Fatalf("svc's spent bucket was reset by a reload that kept its limits: %d", code)
	}
	resp, err := http.Post(base+"/api/v2/playlists/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST after the policy reload: %d, want 403", resp.StatusCode)
	}
	if logs.FilterMessageSnippet("restart scgate").Len() != 0 {
		t.Fatal("a live-reloadable change was reported as needing a restart")
	}
}

// TestTwoGatewaysShareTheRateThroughRedis is the fleet case: two
// gateways on one real redis-server admit the configured rate together (not
// twice it); with Redis killed both keep serving on local buckets; with Redis
// back they share again.
func TestTwoGatewaysShareTheRateThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	// burst/rate = 500 ms: a worker stalled on a loaded machine for less than
	// that loses no tokens, so the admitted count follows the limiter's
	// arithmetic; with a tiny burst, every stall wasted tokens and the count
	// fell below it.
	const rate, burst = 40.0, 20
	cfg := fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
static = "svc"
[limits]
rate = %v
burst = %d
backend = "redis"
[limits.redis]
address = %q
timeout = "2s"
fallback_share = 0.5
probe_interval = "50ms"
key_prefix = "twogw:"
`, up.URL, rate, burst, srv.Addr)
	g1, _ := startGateway(t, cfg)
	g2, _ := startGateway(t, cfg)
	gws := []*gateway.Gateway{g1, g2}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()

	// hammer sends requests from two workers per gateway for d and counts the
	// answers by status.
	var perGateway [2]atomic.Int64 // admitted by each gateway in the last hammer
	hammer := func(d time.Duration) (ok, limited, other int64, took time.Duration) {
		var nOK, nLimited, nOther atomic.Int64
		perGateway[0].Store(0)
		perGateway[1].Store(0)
		start := time.Now()
		stop := start.Add(d)
		var wg sync.WaitGroup
		for i, g := range gws {
			url := "http://" + g.Addr().String() + "/api/v2/history/"
			for range 2 {
				wg.Go(func() {
					for time.Now().Before(stop) {
						resp, err := client.Get(url)
						if err != nil {
							nOther.Add(1)
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						switch resp.StatusCode {
						case http.StatusOK:
							nOK.Add(1)
							perGateway[i].Add(1)
						case http.StatusTooManyRequests:
							nLimited.Add(1)
						default:
							nOther.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		return nOK.Load(), nLimited.Load(), nOther.Load(), time.Since(start)
	}
	checkShared := func(phase string) {
		t.Helper()
		ok, limited, other, took := hammer(2 * time.Second)
		// The shared bucket cannot admit more than a full burst plus the
		// rate over the elapsed time the test measured (10% for the two
		// gateways' clocks and the requests in flight at the ends). Two
		// gateways each admitting the full rate would admit twice that.
		want := float64(burst) + rate*took.Seconds()
		t.Logf("%s: %d admitted, %d limited, %d other in %v; the configured rate admits %.0f", phase, ok, limited, other, took, want)
		if other != 0 || limited == 0 {
			t.Fatalf("%s: %d unexpected answers, %d limited: the test did not push past the limit", phase, other, limited)
		}
		if float64(ok) > 1.1*want {
			t.Fatalf("%s: %d admitted, more than the shared rate allows (%.0f; twice the rate would be %.0f)", phase, ok, want, 2*want)
		}
		// Fewer is what a loaded machine does when no worker asks while the
		// bucket is full; far fewer (each gateway on half the rate, say)
		// means the limit is wrong.
		if float64(ok) < 0.6*want {
			t.Fatalf("%s: %d admitted, want at least 60%% of %.0f", phase, ok, want)
		}
	}
	backendUp := func(g *gateway.Gateway) float64 { return testutil.ToFloat64(g.Metrics().RateLimitBackend) }

	checkShared("shared")

	srv.Stop(t)
	ok, limited, other, took := hammer(500 * time.Millisecond)
	t.Logf("redis down: %d admitted, %d limited, %d other in %v", ok, limited, other, took)
	if other != 0 || perGateway[0].Load() == 0 || perGateway[1].Load() == 0 {
		t.Fatalf("with Redis down: %d and %d admitted, %d failed; both gateways must keep serving", perGateway[0].Load(), perGateway[1].Load(), other)
	}
	// Each on its local share (half the rate and burst): together about the
	// configured rate again, not twice it.
	if want := float64(burst) + rate*took.Seconds(); float64(ok) > 1.25*want {
		t.Fatalf("with Redis down: %d admitted, more than the two shares allow (%.0f)", ok, want)
	}
	for i, g := range gws {
		if backendUp(g) != 0 {
			t.Fatalf("gateway %d: scgate_ratelimit_backend_up is %v with Redis down", i+1, backendUp(g))
		}
	}

	srv.Restart(t)
	waitUntil(t, "both gateways back on Redis", func() bool { return backendUp(g1) == 1 && backendUp(g2) == 1 })
	// The clients' pooled connections to the old Redis process fail once
	// each; those requests are decided on the (drained) local share. Let
	// them go by, then let the shared bucket refill (burst/rate = 100 ms)
	// before measuring the shared rate again.
	hammer(300 * time.Millisecond)
	time.Sleep(time.Duration(float64(burst)/rate*float64(time.Second)) + 50*time.Millisecond) // bucket refill, not synchronisation
	checkShared("shared again")
}
