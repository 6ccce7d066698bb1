// Package ratelimit decides whether a caller's request may go to the
// broadcaster now, so that one runaway caller cannot exhaust what the
// broadcaster account will take.
//
// Each request takes a token from two buckets: the caller's own and the one
// shared by every caller of the same broadcaster key. A caller may also have a
// concurrency cap. A refused request either fails at once (mode Reject) or
// queues for up to its MaxWait (mode Wait). When the broadcaster itself
// answers 429, the key's bucket pauses.
//
// The buckets live in a Backend: Local keeps them in the process (GCRA, the
// same arithmetic as the Redis script, so that a cancelled waiter's tokens
// can be given back exactly); Redis shares them between the replicas of a fleet
// (GCRA in one Lua script per request) and falls back to local buckets with
// the replica's share of the limits while Redis cannot be reached. The
// Limiter reads its clock from Options.Now, so tests drive it without sleeping.
//
// Buckets are created only for the callers and keys the gateway asks about,
// which are those in the vault, and Forget drops the ones a vault reload
// removed; memory stays bounded by the vault.
package ratelimit
