package config

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const minimal = "[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n"

func TestDefaultsComeFromTheLibraries(t *testing.T) {
	c, err := Parse("/etc/scgate/config.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"server.read_header_timeout", c.Server.ReadHeaderTimeout.Duration, proxy.DefaultReadHeaderTimeout},
		{"server.idle_timeout", c.Server.IdleTimeout.Duration, proxy.DefaultIdleTimeout},
		{"server.max_body_bytes", c.Server.MaxBodyBytes, int64(proxy.DefaultMaxBodyBytes)},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout.Duration, proxy.DefaultShutdownTimeout},
		{"upstream.response_header_timeout", c.Upstream.ResponseHeaderTimeout.Duration, proxy.DefaultResponseHeaderTimeout},
		{"upstream.max_idle_conns", c.Upstream.MaxIdleConns, proxy.DefaultMaxIdleConns},
		{"vault.poll_interval", c.Vault.PollInterval.Duration, keyvault.DefaultPollInterval},
		{"limits.max_wait", c.Limits.MaxWait.Duration, ratelimit.DefaultMaxWait},
		{"limits.max_upstream_pause", c.Limits.MaxUpstreamPause.Duration, proxy.DefaultMaxUpstreamPause},
		{"rotation.rejection_cooldown", c.Rotation.RejectionCooldown.Duration, keyvault.DefaultCoolDown},
		{"rotation.expiry_warn_before", c.Rotation.ExpiryWarnBefore.Duration, keyvault.DefaultWarnBefore},
		{"rotation.replay_body_bytes", c.Rotation.ReplayBody(), int64(proxy.DefaultReplayBodyBytes)},
		{"vault.file", c.Vault.File, "/etc/scgate/keys.toml"},
	}
	for _, k := range checks {
		if k.got != k.want {
			t.Errorf("%s = %v, want %v", k.name, k.got, k.want)
		}
	}
}

func TestProblemsAreAllReportedInTheFilesWords(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string
	}{
		{"typo gets a suggestion", "[server]\nlistn = \"x\"\n" + minimal,
			[]string{`cfg.toml:2: unknown setting "server.listn"; did you mean "server.listen"?`}},
		{"typo in a caller's limits", minimal + "[limits.callers.\"svc\"]\nbrust = 3\n",
			[]string{`did you mean "limits.callers.svc.burst"?`}},
		{"nothing close", "[server]\nfrobnicate = 1\n" + minimal,
			[]string{`unknown setting "server.frobnicate"; see config.example.toml`}},
		{"a string for a number", minimal + "[limits]\nrate = \"fast\"\n",
			[]string{"cfg.toml:8: limits.rate: a string does not fit here: write a number"}},
		{"a number for a list", minimal + "[server]\nself_signed_hosts = 3\n",
			[]string{"server.self_signed_hosts", "write a list"}},
		{"several at once", "[server]\nlisten = \"8090\"\ntls = \"maybe\"\n[admin]\nlisten = \"localhost\"\n[log]\nlevel = \"loud\"\n" + minimal,
			[]string{"cfg.toml:2: server.listen: \"8090\" is not host:port", "cfg.toml:3: server.tls", "cfg.toml:5: admin.listen", "cfg.toml:7: log.level"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("cfg.toml", []byte(c.file))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if goType.MatchString(err.Error()) {
				t.Errorf("error names a Go type:\n%v", err)
			}
		})
	}
}

var goType = regexp.MustCompile(`\b(config|main)\.[A-Z]`)

func TestRestartNeededIsDerivedFromTheSchema(t *testing.T) {
	parse := func(s string) *Config {
		t.Helper()
		c, err := Parse("cfg.toml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := parse(minimal)
	if got := RestartNeeded(old, parse(minimal+"[server]\nread_timeout = \"2m\"\n")); len(got) != 0 {
		t.Errorf("a default written out is no change: %v", got)
	}
	next := parse(minimal + "[server]\nlisten = \"127.0.0.1:8081\"\n[limits]\nrate = 5.0\nbackend = \"local\"\n[policy.sets]\nro = [\"GET /**\"]\n")
	got := RestartNeeded(old, next)
	if !slices.Equal(got, []string{"server.listen"}) {
		t.Errorf("restart needed for %v, want [server.listen] (limits.rate and [policy] are live)", got)
	}
	next = parse(strings.Replace(minimal, "radio.example", "other.example", 1) + "[limits]\nbackend = \"redis\"\n[limits.redis]\naddress = \"r:6379\"\nfallback_share = 0.5\n")
	got = RestartNeeded(old, next)
	for _, want := range []string{"upstream.url", "limits.backend", "limits.redis.address"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s changed, restart list %v", want, got)
		}
	}
}
