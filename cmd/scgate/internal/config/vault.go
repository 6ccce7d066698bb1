package config

import (
	"errors"
	"fmt"
	"os"

	"filippo.io/age"

	"github.com/scgate/scgate/keyvault"
)

// Vault is [vault]: where the key vault is and how it is followed.
type Vault struct {
	File         string   `toml:"file"`
	PollInterval Duration `toml:"poll_interval"`
	// AgeIdentityFile decrypts an age-encrypted vault. It is read once, at
	// start: changing it needs a restart.
	AgeIdentityFile string `toml:"age_identity_file"`
	// DangerouslyAllowWritableKeyFiles lets scgate start with key material
	// others can write (keyperms.go).
	DangerouslyAllowWritableKeyFiles bool `toml:"dangerously_allow_writable_key_files"`
}

func (v *Vault) defaults() { v.PollInterval.orDefault(keyvault.DefaultPollInterval) }

func (v Vault) validate(p *problems) {
	if v.File == "" {
		p.add("the vault file is required (see deploy/examples/keys.example.toml)", "vault", "file")
	}
}

// AgeIdentities reads vault.age_identity_file, or returns nil when none is
// configured.
func (c *Config) AgeIdentities() ([]age.Identity, error) {
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
		return nil, c.Wrap(fmt.Errorf("cannot read %s: %w", path, err), "vault", "age_identity_file")
	}
	ids, err := keyvault.ParseIdentities(path, data)
	if err != nil {
		return nil, c.Wrap(err, "vault", "age_identity_file")
	}
	return ids, nil
}

// WatcherOptions is [vault] as keyvault.NewWatcher takes it (Logger and
// OnReload are the gateway's to set).
func (c *Config) WatcherOptions(ids []age.Identity) keyvault.WatcherOptions {
	return keyvault.WatcherOptions{Path: c.Vault.File, PollInterval: c.Vault.PollInterval.Duration, Identities: ids, Panels: c.PanelNames()}
}
