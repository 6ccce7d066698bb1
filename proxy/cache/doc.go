// Package cache is the gateway's response cache for the status reads an
// operator marks cacheable (now playing, history, channels, the schedule):
// many services poll the same answers, and the broadcaster need not answer
// each of them.
//
// The cache is a stage of the forward step, after the gateway has decided
// the request (identity, route policy, station scope, limits, key version):
// a caller is only ever answered from the cache for a request it was
// allowed to send. Entries are keyed by panel, the caller's vault key name
// (or "shared" for routes the operator marks as answered the same for
// every key), method, path, query and the request headers the answer's
// Vary names. The rules of RFC 9111 for a shared cache apply to what is
// stored (no-store, private, max-age and s-maxage, Set-Cookie, status
// codes), answers say what the cache did in Cache-Status (RFC 9211) and
// carry Age, and concurrent misses for one entry send one request
// upstream.
package cache
