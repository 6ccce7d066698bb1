package main

import (
	"strings"
	"testing"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/proxy"
)

// TestBufferBudgetConfig: server.max_buffered_bytes defaults to the proxy's
// budget, and a negative one, or one that could never hold a replay buffer,
// is refused at its line.
func TestBufferBudgetConfig(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{"[server]\nmax_buffered_bytes = -1\n", "config.toml:6: server.max_buffered_bytes: must be positive"},
		{"[server]\nmax_buffered_bytes = 1000\n", "config.toml:6: server.max_buffered_bytes: must be larger than rotation.replay_body_bytes (65536)"},
	} {
		p := writeSetup(t, "https://radio.example:1030", c.extra, goodVault)
		code, _, errOut := run(t, "check", "--config", p)
		if code != exitInvalid || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, %s; want %q", c.extra, code, errOut, c.want)
		}
	}
	cfg, err := config.Load(writeSetup(t, "https://radio.example:1030", "", goodVault))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MaxBufferedBytes != proxy.DefaultBufferBudget {
		t.Errorf("default %d, want %d", cfg.Server.MaxBufferedBytes, proxy.DefaultBufferBudget)
	}
	cfg, err = config.Load(writeSetup(t, "https://radio.example:1030", "[server]\nmax_buffered_bytes = 1000\n[rotation]\nreplay_body_bytes = 0\n", goodVault))
	if err != nil || cfg.Server.MaxBufferedBytes != 1000 {
		t.Errorf("a small budget without replay buffers: %v, %d", err, cfg.Server.MaxBufferedBytes)
	}
}
