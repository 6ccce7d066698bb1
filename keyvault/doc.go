// Package keyvault holds the Streaming.Center API keys that scgate injects
// into forwarded requests, decides which version of a key is used at a given
// moment, and keeps the vault current while the gateway runs.
//
// The vault is a TOML file (see docs/configuration.md for its format): a [callers] table
// mapping each caller identity to a key name, and one or more [[keys.NAME]]
// versions per key, each with an inline secret or a secret_file and optional
// not_before/expires bounds. [Load] and [Parse] validate the whole file before
// anything is used and report every problem with its file and line, so an
// operator can fix a broken rotation in one pass.
//
// A loaded [Vault] is an immutable snapshot: a request takes one with
// [Watcher.Current] at its start and works on it to the end, so a reload never
// changes a request half-way and never makes it wait. [Vault.Select] does not
// allocate, because it runs on every request.
//
// Secrets are held in [Secret] values, whose every printing path (fmt verbs,
// JSON, text, zap and slog) yields only the key's prefix: logs, metrics,
// errors and panics cannot leak a key by accident. Only [Secret.Value] returns
// the key itself, and the only caller that should need it is the code that sets
// the SC-API-KEY header.
//
// [Watcher] reloads the vault when its directory changes (which also catches
// the symlink swap of a Kubernetes Secret volume), when asked to (SIGHUP), and
// on a poll as a fallback. A reload that fails keeps the last good vault in
// service; one that succeeds logs the audit trail of what changed ([Diff]).
//
// Rotation support: [Rejections] remembers versions the broadcaster refused,
// for a cool-down, so that [Key.Pick] steers requests to a standby version;
// [Key.CoveredUntil] and [ExpiryWarner] show an expiry coming. A vault may be
// encrypted as a whole with age ([IsEncrypted], [Encrypt]); [LoadOptions]
// carries the identities that decrypt it.
package keyvault
