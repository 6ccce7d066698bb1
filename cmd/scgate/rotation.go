package main

import (
	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/scgate/scgate/keyvault"
)

// rotation is what a running gateway keeps for key rotation: the versions
// the broadcaster refused, the expiry warner, and the age identities of an
// encrypted vault.
type rotation struct {
	rejections *keyvault.Rejections
	expiry     *keyvault.ExpiryWarner
	identities []age.Identity
}

func newRotation(cfg *Config, logger *zap.Logger) (rotation, error) {
	var r rotation
	var err error
	if r.identities, err = cfg.ageIdentities(); err != nil {
		return r, err
	}
	if r.rejections, err = keyvault.NewRejections(keyvault.RejectionsOptions{CoolDown: cfg.Rotation.RejectionCooldown.Duration}); err != nil {
		return r, err
	}
	r.expiry, err = keyvault.NewExpiryWarner(keyvault.ExpiryWarnerOptions{
		WarnBefore: cfg.Rotation.ExpiryWarnBefore.Duration, Logger: logger.Named("vault"),
	})
	return r, err
}
