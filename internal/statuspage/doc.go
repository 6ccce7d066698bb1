// Package statuspage serves the admin listener's /status page and its
// /status.json twin: build and uptime, each panel's reachability, each
// caller's key with its versions on a timeline, rejected versions, limiter
// state, the last vault reloads with their audit lines, and certificate
// expiries.
//
// It reads snapshots only: the live vault, the rejection set and the
// limiter through the small interfaces of Options, so it depends on
// keyvault and ratelimit and nothing depends on it but the binary's
// wiring. Every value it shows is a name, a time or a prefix: a secret
// never reaches it in a form it could print (keyvault.Secret prints its
// prefix only, and the page asks for nothing else).
//
// The page is bounded whatever the vault's size: callers come a page at a
// time (limit at most MaxLimit), a search (q) is at most MaxQueryLen
// bytes, and the lists it shows in full (reloads, certificates, panels,
// the versions of one key) are capped.
package statuspage
