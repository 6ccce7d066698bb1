package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"filippo.io/age"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// RotationConfig is [rotation]: how scgate helps ops rotate keys (README.md,
// "Rotating a key").
type RotationConfig struct {
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

// validateRotation applies the defaults of [rotation] (config.go's
// applyDefaults knows nothing of it) and checks it and vault.age_identity_file.
func (c *Config) validateRotation() []error {
	r := &c.Rotation
	setDuration(&r.RejectionCooldown, keyvault.DefaultCoolDown)
	setDuration(&r.ExpiryWarnBefore, keyvault.DefaultWarnBefore)
	var errs []error
	if r.RejectionCooldown.Duration <= 0 {
		errs = append(errs, c.problem(`must be longer than 0, like "5m": a refused key version is set aside this long`, "rotation", "rejection_cooldown"))
	}
	if r.ExpiryWarnBefore.Duration <= 0 {
		errs = append(errs, c.problem(`must be longer than 0, like "336h" (14 days)`, "rotation", "expiry_warn_before"))
	}
	if r.ReplayBodyBytes != nil && (*r.ReplayBodyBytes < 0 || *r.ReplayBodyBytes > c.Server.MaxBodyBytes) {
		errs = append(errs, c.problem(fmt.Sprintf("must be between 0 (retry only requests without a body) and server.max_body_bytes (%d)", c.Server.MaxBodyBytes),
			"rotation", "replay_body_bytes"))
	}
	if r.RejectionCanary != "" {
		if _, err := proxy.ParseCanary(r.RejectionCanary); err != nil {
			errs = append(errs, c.problem(err.Error()+`; it must be a GET (or HEAD) of a route that needs a key and that every valid key may read`, "rotation", "rejection_canary"))
		}
	}
	if r.RejectionBodyMatch != "" {
		if _, err := proxy.NewBodyMatcher(r.RejectionBodyMatch); err != nil {
			errs = append(errs, c.problem(err.Error()+`; give the exact "detail" text of your panel's key refusal, like "Invalid API key."`, "rotation", "rejection_body_match"))
		}
	}
	return errs
}

// rejectionCheck is the value for proxy.Options.RejectionCheck (validated).
func (r RotationConfig) rejectionCheck() proxy.RejectionCheck {
	var c proxy.RejectionCheck
	if r.RejectionCanary != "" {
		c.Canary, _ = proxy.ParseCanary(r.RejectionCanary)
	}
	c.BodyMatch = r.RejectionBodyMatch
	return c
}

// replayBodyBytes is the value for proxy.Options.ReplayBodyBytes.
func (r RotationConfig) replayBodyBytes() int64 {
	switch {
	case r.ReplayBodyBytes == nil:
		return proxy.DefaultReplayBodyBytes
	case *r.ReplayBodyBytes == 0:
		return -1 // proxy: negative means "no body is buffered"
	}
	return *r.ReplayBodyBytes
}

// ageIdentities reads vault.age_identity_file, or returns nil when none is
// configured. The file is read once, at start: changing it needs a restart.
func (c *Config) ageIdentities() ([]age.Identity, error) {
	path := c.Vault.AgeIdentityFile
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s:%d: vault.age_identity_file: cannot read %s: %w", c.path, c.lines.Line("vault", "age_identity_file"), path, err)
	}
	ids, err := keyvault.ParseIdentities(path, data)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: vault.age_identity_file: %w", c.path, c.lines.Line("vault", "age_identity_file"), err)
	}
	return ids, nil
}

// loadVault loads the config's vault once (for check and keys), with the age
// identity when one is configured.
func (c *Config) loadVault(now time.Time) (*keyvault.Vault, []keyvault.Warning, error) {
	ids, err := c.ageIdentities()
	if err != nil {
		return nil, nil, err
	}
	return keyvault.Load(c.Vault.File, keyvault.LoadOptions{Now: func() time.Time { return now }, Identities: ids})
}
