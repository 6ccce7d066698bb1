package ratelimit

import (
	"context"
	"time"
)

// Scope names the limit that refused a request, as in the
// scgate_rate_limited_total metric.
type Scope string

const (
	ScopeCaller Scope = "caller" // the caller's own bucket or concurrency cap
	ScopeKey    Scope = "key"    // the bucket shared by the callers of a key, or its pause
)

// Request asks for one token from a caller's bucket and one from its key's.
type Request struct {
	Caller       string
	CallerBucket Bucket
	Key          string
	KeyBucket    Bucket
	// MaxWait is the longest the request may wait for its tokens; 0 means
	// it must go now or not at all.
	MaxWait time.Duration
}

// Usage is a bucket's state after a take, for the RateLimit header.
type Usage struct {
	Remaining int           // whole tokens left
	Reset     time.Duration // until the bucket is full again
}

// Result is a Backend's answer. Either both tokens were taken (Allowed), or
// none was.
type Result struct {
	Allowed bool
	// Wait is, when Allowed, how long the request must wait before it goes
	// (0 unless MaxWait allowed queueing).
	Wait time.Duration
	// RetryAfter is, when refused, how long until the request could pass.
	RetryAfter time.Duration
	// Scope is, when refused, the limit that refused it; Paused says that
	// it was the key's pause after an upstream 429.
	Scope  Scope
	Paused bool
	// Caller and Key describe the two buckets after this take.
	Caller, Key Usage
	// Refund, set when an allowed request must wait, gives both tokens back:
	// the request was cancelled while it waited and will not be sent. It is
	// called at most once, with a context that is not cancelled.
	Refund func(ctx context.Context)
}

// Backend keeps the token buckets. Local and Redis implement it.
type Backend interface {
	// Take takes one token from each of the request's limited buckets,
	// both or neither. now is the caller's clock; a shared backend may use
	// its own.
	Take(ctx context.Context, now time.Time, r Request) (Result, error)
	// Pause stops the key's bucket from handing out tokens for d.
	Pause(ctx context.Context, now time.Time, key string, d time.Duration) error
	// Forget drops the state of the callers and keys for which keep reports
	// false.
	Forget(keep func(scope Scope, id string) bool)
	// Name is "local" or "redis", for logs and explanations.
	Name() string
}

// refusal builds the Result of a request that cannot pass within maxWait,
// given how long each limit would make it wait.
func refusal(callerDelay, keyDelay, pause time.Duration) Result {
	res := Result{RetryAfter: max(callerDelay, keyDelay, pause), Scope: ScopeKey}
	if callerDelay >= max(keyDelay, pause) {
		res.Scope = ScopeCaller
	} else {
		res.Paused = pause >= keyDelay
	}
	return res
}
