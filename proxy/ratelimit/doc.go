// Package ratelimit decides whether a caller may send one more request now.
//
// This first version keeps one token bucket (golang.org/x/time/rate) per caller
// in the process. The bucket set is bounded by the vault: the proxy only asks
// about callers that the vault knows, so a stranger cannot grow it.
package ratelimit
