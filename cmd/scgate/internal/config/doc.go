// Package config is scgate's config file: config.toml's schema, its
// defaults, its validation and its conversion into the Options structs of
// the libraries (proxy, keyvault, proxy/identity, proxy/ratelimit,
// proxy/tlsconf). It is the only package that knows TOML.
//
// It lives under cmd/scgate/internal because only the scgate binary may use
// it: the libraries take Options and know nothing of files, flags or TOML, so
// that they can be embedded and tested without a config file.
//
// One file per TOML section holds that section's schema, defaults,
// validation and conversion. Defaults come from the libraries' exported
// DefaultX constants, so each default is written once. Every problem of a
// file is reported at once, each as FILE:LINE: key: what to fix, with the key
// as written in the file (never a Go type name), and unknown settings get a
// "did you mean" when a known one is close.
package config
