// Package tomlpos finds the line on which a key of a TOML document is written,
// so that errors found after decoding (a setting that contradicts another, a
// name that refers to nothing) can say FILE:LINE like the decoder's own.
//
// It is shared by the config loader (cmd/scgate) and the vault (keyvault), and
// imports nothing of scgate's.
package tomlpos
