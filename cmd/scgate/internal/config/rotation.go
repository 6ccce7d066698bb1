package config

import (
	"fmt"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// Rotation is [rotation]: how scgate helps ops rotate keys (docs/configuration.md,
// "Rotating a key").
type Rotation struct {
	// RejectionCooldown is how long a key version the broadcaster refused
	// (403) is set aside in favour of a standby version.
	RejectionCooldown Duration `toml:"rejection_cooldown"`
	// ReplayBodyBytes is the largest request body buffered so that a request
	// refused for its key can be retried with a standby version; 0 retries
	// only requests without a body. Absent: proxy.DefaultReplayBodyBytes.
	ReplayBodyBytes *int64 `toml:"replay_body_bytes"`
	// RejectionCanary is the route ("METHOD /path?query") probed with a
	// version the broadcaster answered 403 to: only when it refuses the
	// version too is the version set aside. Absent: proxy.DefaultCanary.
	RejectionCanary string `toml:"rejection_canary"`
	// RejectionBodyMatch, when set, is the panel's exact wording of a key
	// refusal; a 403 worded so is taken as confirmed without a probe.
	RejectionBodyMatch string `toml:"rejection_body_match"`
	// ExpiryWarnBefore is how far ahead a key version's expiry is warned
	// about in the log (once a day per version).
	ExpiryWarnBefore Duration `toml:"expiry_warn_before"`
}

func (r *Rotation) defaults() {
	r.RejectionCooldown.orDefault(keyvault.DefaultCoolDown)
	r.ExpiryWarnBefore.orDefault(keyvault.DefaultWarnBefore)
}

func (r Rotation) validate(p *problems, c *Config) {
	if r.RejectionCooldown.Duration <= 0 {
		p.add(`must be longer than 0, like "5m": a refused key version is set aside this long`, "rotation", "rejection_cooldown")
	}
	if r.ExpiryWarnBefore.Duration <= 0 {
		p.add(`must be longer than 0, like "336h" (14 days)`, "rotation", "expiry_warn_before")
	}
	if r.ReplayBodyBytes != nil && (*r.ReplayBodyBytes < 0 || *r.ReplayBodyBytes > c.Server.MaxBodyBytes) {
		p.add(fmt.Sprintf("must be between 0 (retry only requests without a body) and server.max_body_bytes (%d)", c.Server.MaxBodyBytes),
			"rotation", "replay_body_bytes")
	}
	if r.RejectionCanary != "" {
		if _, err := proxy.ParseCanary(r.RejectionCanary); err != nil {
			p.add(err.Error()+`; it must be a GET (or HEAD) of a route that needs a key and that every valid key may read`, "rotation", "rejection_canary")
		}
	}
	if r.RejectionBodyMatch != "" {
		if _, err := proxy.NewBodyMatcher(r.RejectionBodyMatch); err != nil {
			p.add(err.Error()+`; give the exact "detail" text of your panel's key refusal, like "Invalid API key."`, "rotation", "rejection_body_match")
		}
	}
}

// RejectionCheck is the value for proxy.Options.RejectionCheck (validated
// with the config).
func (r Rotation) RejectionCheck() proxy.RejectionCheck {
	var c proxy.RejectionCheck
	if r.RejectionCanary != "" {
		c.Canary, _ = proxy.ParseCanary(r.RejectionCanary)
	}
	c.BodyMatch = r.RejectionBodyMatch
	return c
}

// ReplayBody is the value for proxy.Options.ReplayBodyBytes.
func (r Rotation) ReplayBody() int64 {
	switch {
	case r.ReplayBodyBytes == nil:
		return proxy.DefaultReplayBodyBytes
	case *r.ReplayBodyBytes == 0:
		return -1 // proxy: negative means "no body is buffered"
	}
	return *r.ReplayBodyBytes
}

// RejectionsOptions is [rotation] as keyvault.NewRejections takes it.
func (r Rotation) RejectionsOptions() keyvault.RejectionsOptions {
	return keyvault.RejectionsOptions{CoolDown: r.RejectionCooldown.Duration}
}

// ExpiryWarnerOptions is [rotation] as keyvault.NewExpiryWarner takes it
// (the Logger is the gateway's to set).
func (r Rotation) ExpiryWarnerOptions() keyvault.ExpiryWarnerOptions {
	return keyvault.ExpiryWarnerOptions{WarnBefore: r.ExpiryWarnBefore.Duration}
}
