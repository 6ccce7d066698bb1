// Package tlstest makes throw-away certificate authorities and leaf
// certificates for tests that need real TLS: a server certificate a client
// can verify, client certificates carrying SPIFFE IDs, DNS names or common
// names, and PEM files on disk for the reloading sources in tlsconf.
//
// Every helper takes a testing.TB and fails the test on error, so callers
// stay short. Keys are ECDSA P-256 because they are fast to generate; a test
// suite may make dozens of them.
package tlstest
