package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// RedisOptions configures the shared backend.
type RedisOptions struct {
	// Addr is Redis's host:port.
	Addr string
	// Username and Password authenticate to Redis (ACL); both optional. The
	// password is never logged.
	Username, Password string
	// DB is the Redis database number.
	DB int
	// Timeout bounds every Redis command, and the connect (default 250ms).
	// A request never waits longer than this for Redis: past it, the replica
	// uses its local buckets.
	Timeout time.Duration
	// KeyPrefix starts every Redis key scgate writes (default "scgate:rl:").
	KeyPrefix string
	// FallbackShare is this replica's share of every limit while Redis is
	// unreachable, in (0, 1]: 1/replicas keeps the fleet within the limit.
	FallbackShare float64
	// ProbeInterval is how often Run checks whether Redis is back (default 1s).
	ProbeInterval time.Duration
	// Logger reports the switches between Redis and the local fallback; nil
	// discards them.
	Logger *zap.Logger
	// OnStateChange is called with true when Redis is in use and false when
	// the replica falls back to local buckets, at start and on every switch
	// (for the scgate_ratelimit_backend_up gauge).
	OnStateChange func(up bool)
}

// Redis keeps the buckets in Redis, shared by every replica, with the GCRA
// algorithm: one Lua script per request takes the caller's and the key's
// tokens atomically, and Redis's own clock keeps the replicas in step. While
// Redis cannot be reached it falls back to local buckets holding
// FallbackShare of each limit, and Run switches back when Redis returns.
type Redis struct {
	client   *redis.Client
	prefix   string
	share    float64
	interval time.Duration
	timeout  time.Duration
	local    *Local
	log      *zap.Logger
	onChange func(bool)
	up       atomic.Bool
	down     chan struct{} // wakes Run when Redis goes away
}

// NewRedis validates opts and returns the backend. It checks Redis once,
// within Timeout; an unreachable Redis is not an error (the replica starts on
// its local buckets), but it is logged.
func NewRedis(opts RedisOptions) (*Redis, error) {
	switch {
	case opts.Addr == "":
		return nil, errors.New("ratelimit: the Redis address is required")
	case !(opts.FallbackShare > 0 && opts.FallbackShare <= 1):
		return nil, fmt.Errorf("ratelimit: fallback share %v: must be in (0, 1], e.g. 0.5 for two replicas", opts.FallbackShare)
	case opts.Timeout < 0 || opts.ProbeInterval < 0:
		return nil, errors.New("ratelimit: Redis timeouts must not be negative")
	}
	r := &Redis{
		prefix:   opts.KeyPrefix,
		share:    opts.FallbackShare,
		interval: opts.ProbeInterval,
		timeout:  opts.Timeout,
		local:    NewLocal(),
		log:      opts.Logger,
		onChange: opts.OnStateChange,
		down:     make(chan struct{}, 1),
	}
	if r.prefix == "" {
		r.prefix = "scgate:rl:"
	}
	if r.interval == 0 {
		r.interval = time.Second
	}
	if r.timeout == 0 {
		r.timeout = 250 * time.Millisecond
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.onChange == nil {
		r.onChange = func(bool) {}
	}
	r.client = redis.NewClient(&redis.Options{
		Addr: opts.Addr, Username: opts.Username, Password: opts.Password, DB: opts.DB,
		DialTimeout: r.timeout, ReadTimeout: r.timeout, WriteTimeout: r.timeout, PoolTimeout: r.timeout,
		ContextTimeoutEnabled: true,
		// One quick retry covers a pooled connection that died with a
		// restarted Redis; go-redis's default dial retries and backoffs
		// would hold requests for up to seconds while Redis is down.
		MaxRetries: 1, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond,
		// Plain RESP2 and no CLIENT SETINFO: fewer round trips on connect,
		// and nothing that an older Redis answers with an error.
		Protocol: 2, DisableIdentity: true,
	})
	if err := r.probe(context.Background()); err != nil {
		r.log.Warn("redis is unreachable at start: limiting with this replica's share on local buckets until it answers",
			zap.String("addr", opts.Addr), zap.Float64("share", r.share), zap.Error(err))
		r.down <- struct{}{}
		r.onChange(false)
	} else {
		r.up.Store(true)
		r.onChange(true)
	}
	return r, nil
}

// Name implements Backend.
func (r *Redis) Name() string { return "redis" }

// Up reports whether the shared buckets are in use.
func (r *Redis) Up() bool { return r.up.Load() }

// Close releases the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }

// Run checks, every ProbeInterval while Redis is unreachable or failing,
// whether it runs the limiter's scripts again, and switches the replica back to the shared buckets when it is. It
// returns when ctx is done.
func (r *Redis) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.down:
		}
		for !r.up.Load() {
			t := time.NewTimer(r.interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			if err := r.probe(ctx); err == nil && r.up.CompareAndSwap(false, true) {
				r.log.Info("redis answers again: limits are shared by the fleet again")
				r.onChange(true)
			}
		}
	}
}

// probe checks that Redis runs scripts that write, as every request's does.
// A PING is not enough: a Redis out of memory (maxmemory with noeviction)
// answers PING but refuses every write, and a backend judged up by PING
// would flap between Redis and the fallback at every probe.
func (r *Redis) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := probeScript.Run(ctx, r.client, []string{r.prefix + "probe"}).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}

// markDown switches to the local buckets, logging once per outage.
func (r *Redis) markDown(err error) {
	if !r.up.CompareAndSwap(true, false) {
		return
	}
	r.log.Warn("redis is unreachable: limiting with this replica's share on local buckets until it answers",
		zap.Float64("share", r.share), zap.Error(err))
	r.onChange(false)
	select {
	case r.down <- struct{}{}:
	default:
	}
}

// Take implements Backend.
func (r *Redis) Take(ctx context.Context, now time.Time, req Request) (Result, error) {
	if r.up.Load() {
		res, err := r.takeShared(ctx, req)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return Result{}, ctx.Err() // the caller went away; Redis may be fine
		}
		r.markDown(err)
	}
	req.CallerBucket, req.KeyBucket = r.shareOf(req.CallerBucket), r.shareOf(req.KeyBucket)
	return r.local.Take(ctx, now, req)
}

// shareOf is this replica's part of a bucket while it counts alone.
func (r *Redis) shareOf(b Bucket) Bucket {
	if !b.Limited() {
		return b
	}
	return Bucket{Rate: b.Rate * r.share, Burst: max(1, int(math.Floor(float64(b.Burst)*r.share)))}
}

// Pause implements Backend: in Redis when it answers (so every replica
// pauses), and locally in any case (so the fallback honours it too).
func (r *Redis) Pause(ctx context.Context, now time.Time, key string, d time.Duration) error {
	_ = r.local.Pause(ctx, now, key, d)
	if !r.up.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := pauseScript.Run(ctx, r.client, []string{r.prefix + "p:" + key}, d.Milliseconds()).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.markDown(err)
	}
	return nil
}

// Forget implements Backend. Redis entries expire on their own once their
// bucket is full again, so only the local fallback needs pruning.
func (r *Redis) Forget(keep func(scope Scope, id string) bool) { r.local.Forget(keep) }

func (r *Redis) takeShared(ctx context.Context, req Request) (Result, error) {
	// Bound the whole exchange, retries included: a request never waits
	// longer than Timeout for Redis before its replica decides alone.
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	keys := []string{r.prefix + "c:" + req.Caller, r.prefix + "k:" + req.Key, r.prefix + "p:" + req.Key}
	v, err := takeScript.Run(ctx, r.client, keys,
		intervalMicros(req.CallerBucket), req.CallerBucket.Burst,
		intervalMicros(req.KeyBucket), req.KeyBucket.Burst,
		req.MaxWait.Microseconds()).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(v) != 8 {
		return Result{}, fmt.Errorf("ratelimit: redis: the script answered %d values, want 8", len(v))
	}
	us := func(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
	res := Result{
		Allowed: v[0] == 1,
		Caller:  Usage{Remaining: int(v[4]), Reset: us(v[5])},
		Key:     Usage{Remaining: int(v[6]), Reset: us(v[7])},
	}
	if res.Allowed {
		res.Wait = us(v[1])
		if res.Wait > 0 {
			res.Refund = func(ctx context.Context) { r.refund(ctx, keys[:2], req) }
		}
		return res, nil
	}
	res.RetryAfter = us(v[1])
	res.Scope = ScopeCaller
	if v[2] == 1 {
		res.Scope = ScopeKey
	}
	res.Paused = v[3] == 1
	return res, nil
}

// refund gives a cancelled waiter's tokens back: each bucket's tat moves
// back by one interval, as if the request had never been queued (the waiters
// behind it keep their turn, so none goes earlier than the limit allows).
// It is best effort, within Timeout: if Redis cannot be reached the tokens
// stay spent, which delays the key's other callers by at most the waiter's
// own place in the queue (never more than its max_wait) and heals as the
// bucket refills.
func (r *Redis) refund(ctx context.Context, keys []string, req Request) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := refundScript.Run(ctx, r.client, keys, intervalMicros(req.CallerBucket), intervalMicros(req.KeyBucket)).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		r.log.Warn("could not give a cancelled request's tokens back to redis; they count as spent until the bucket refills", zap.Error(err))
	}
}

// intervalMicros is GCRA's emission interval (the time one token takes to
// come back) in microseconds; 0 means unlimited.
func intervalMicros(b Bucket) int64 {
	if !b.Limited() {
		return 0
	}
	return max(1, int64(math.Round(1e6/b.Rate)))
}

// takeScript takes a token from the caller's and the key's bucket, both or
// neither. GCRA keeps one number per bucket, its theoretical arrival time
// (tat): a request may go once now >= tat + interval - burst*interval; it
// then moves tat on by one interval. Waiting requests (max_wait) move it on
// too, so they queue in order. Times are microseconds of Redis's clock.
//
// KEYS: caller tat, key tat, key pause. ARGV: caller interval, caller
// burst, key interval, key burst, max wait.
// Returns: allowed, wait-or-retry, refused-by-key, paused,
// caller remaining, caller reset, key remaining, key reset.
var takeScript = redis.NewScript(strings.TrimSpace(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = tonumber(ARGV[5])

local function gcra(key, interval, burst)
  if interval <= 0 then return 0, nil, 0, 0 end
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local delay = new_tat - burst * interval - now
  if delay < 0 then delay = 0 end
  local remaining = math.floor((now + burst * interval - new_tat) / interval)
  if remaining < 0 then remaining = 0 end
  return delay, new_tat, remaining, new_tat - now
end

local ci, cb = tonumber(ARGV[1]), tonumber(ARGV[2])
local ki, kb = tonumber(ARGV[3]), tonumber(ARGV[4])
local cdelay, cnew, crem, creset = gcra(KEYS[1], ci, cb)
local kdelay, knew, krem, kreset = gcra(KEYS[2], ki, kb)
local pause = redis.call('PTTL', KEYS[3])
if pause < 0 then pause = 0 else pause = pause * 1000 end

local wait = math.max(cdelay, kdelay, pause)
if wait > max_wait then
  local by_key, paused = 0, 0
  if cdelay < math.max(kdelay, pause) then
    by_key = 1
    if pause >= kdelay then paused = 1 end
  end
  return {0, math.floor(wait), by_key, paused, 0, math.floor(creset - ci), 0, math.floor(kreset - ki)}
end
if cnew then redis.call('SET', KEYS[1], string.format('%.0f', cnew), 'PX', math.ceil((cnew - now) / 1000) + 1) end
if knew then redis.call('SET', KEYS[2], string.format('%.0f', knew), 'PX', math.ceil((knew - now) / 1000) + 1) end
return {1, math.floor(wait), 0, 0, crem, math.floor(creset), krem, math.floor(kreset)}
`))

// refundScript moves each bucket's tat back by its interval. A bucket whose
// tat is gone (expired: the bucket is full) or falls to now or before is
// deleted, which is the same full bucket.
//
// KEYS: caller tat, key tat. ARGV: caller interval, key interval.
var refundScript = redis.NewScript(strings.TrimSpace(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function refund(key, interval)
  if interval <= 0 then return end
  local tat = tonumber(redis.call('GET', key))
  if not tat then return end
  tat = tat - interval
  if tat <= now then
    redis.call('DEL', key)
  else
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
end
refund(KEYS[1], tonumber(ARGV[1]))
refund(KEYS[2], tonumber(ARGV[2]))
return 0
`))

// probeScript writes a short-lived key, as takeScript does.
var probeScript = redis.NewScript(`redis.call('SET', KEYS[1], '1', 'PX', 1000) return 0`)

// pauseScript pauses a key for ARGV[1] milliseconds, never shortening a
// longer pause already set by another replica.
var pauseScript = redis.NewScript(strings.TrimSpace(`
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
`))

// Client is the connection to Redis, for other users of the same server
// (the response cache's shared store); they must not close it.
func (r *Redis) Client() *redis.Client { return r.client }
