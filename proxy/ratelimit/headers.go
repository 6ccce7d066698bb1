package ratelimit

import (
	"math"
	"strconv"
	"time"
)

// Header values follow the IETF httpapi rate-limit-headers draft: one named
// policy per limit ("caller", "key", "concurrency"), with q the quota
// (the bucket's burst, or the concurrency cap) and w the window in seconds
// (how long an empty bucket takes to fill).

// PolicyHeader is the RateLimit-Policy value: every limit that applies. It is
// "" when nothing limits the caller.
func (d Decision) PolicyHeader() string {
	// Built on the stack: only the final string is allocated.
	var buf [128]byte
	b := buf[:0]
	b = appendPolicy(b, "caller", d.Limits.Caller.Bucket)
	if n := d.Limits.Caller.Concurrency; n > 0 {
		b = appendSep(b)
		b = append(b, `"concurrency";q=`...)
		b = strconv.AppendInt(b, int64(n), 10)
	}
	b = appendPolicy(b, "key", d.Limits.Key)
	return string(b)
}

func appendPolicy(b []byte, name string, bk Bucket) []byte {
	if !bk.Limited() {
		return b
	}
	b = appendSep(b)
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, int64(bk.Burst), 10)
	b = append(b, ";w="...)
	return strconv.AppendInt(b, int64(max(1, ceilSeconds(bk.Window()))), 10)
}

// StateHeader is the RateLimit value. For an allowed request it gives each
// bucket's remaining tokens (r) and the seconds until it is full (t); for a
// refused one, the limit that refused with r=0 and t the Retry-After.
func (d Decision) StateHeader() string {
	var buf [96]byte
	b := buf[:0]
	if !d.Allowed {
		name := "caller"
		switch {
		case d.Concurrency:
			return `"concurrency";r=0`
		case d.Scope == ScopeKey:
			name = "key"
		}
		return string(appendState(b, name, 0, d.RetryAfterSeconds()))
	}
	if d.Limits.Caller.Limited() {
		b = appendState(b, "caller", d.Caller.Remaining, ceilSeconds(d.Caller.Reset))
	}
	if d.Limits.Key.Limited() {
		b = appendState(b, "key", d.Key.Remaining, ceilSeconds(d.Key.Reset))
	}
	return string(b)
}

func appendState(b []byte, name string, remaining, reset int) []byte {
	b = appendSep(b)
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(remaining), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, int64(reset), 10)
}

func appendSep(b []byte) []byte {
	if len(b) > 0 {
		b = append(b, ", "...)
	}
	return b
}

// RetryAfterSeconds is the Retry-After value of a refusal: RetryAfter rounded
// up to whole seconds, at least 1.
func (d Decision) RetryAfterSeconds() int {
	return max(1, ceilSeconds(d.RetryAfter))
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}
