// Package gateway builds a running scgate from a config.Config: the one
// Build that `scgate run`, `check`, `explain`, `demo` and the tests share, so
// that they cannot disagree about what a config means.
//
// Build in dry-run mode opens every file the config names, parses every
// certificate and CA bundle, decodes the vault, and builds the identity
// resolvers, the route policy, the limiter and the metrics, exactly as a
// real start does, but binds no listener and starts no watcher or
// goroutine. A config that `scgate check` accepts therefore fails `scgate
// run` only for what a dry run cannot know: a port already taken, an
// unreachable Redis or ACME CA.
//
// It lives under cmd/scgate/internal: it is the binary's wiring, and the
// libraries it wires import nothing of it.
package gateway
