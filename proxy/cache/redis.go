package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures the shared store.
type RedisOptions struct {
	// Client is the connection, shared with the rate limiter; the store
	// never closes it. Required.
	Client *redis.Client
	// Prefix starts every key the store writes. Required, so that the
	// cache's keys never meet the limiter's.
	Prefix string
	// Timeout bounds each read and write (default 100ms): a slow Redis
	// must cost a request little more than a miss.
	Timeout time.Duration
	// Up, when set, says whether Redis is reachable (the limiter's health
	// probe); while it says no, the store answers every read as a miss at
	// once and writes nothing.
	Up func() bool
}

// Redis is a store shared by a fleet of gateways on one Redis. Its size
// is bounded by Redis's own maxmemory: every entry carries its expiry, so
// an allkeys-lru or volatile-lru policy evicts them.
type Redis struct {
	o RedisOptions
}

// DefaultRedisTimeout bounds each Redis read and write of the cache.
const DefaultRedisTimeout = 100 * time.Millisecond

// NewRedis returns the shared store.
func NewRedis(o RedisOptions) (*Redis, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("cache: the Redis store needs a client")
	case o.Prefix == "":
		return nil, errors.New("cache: the Redis store needs a key prefix")
	case o.Timeout < 0:
		return nil, errors.New("cache: the Redis timeout must not be negative")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultRedisTimeout
	}
	return &Redis{o: o}, nil
}

func (r *Redis) down() bool { return r.o.Up != nil && !r.o.Up() }

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) (*Entry, error) {
	if r.down() {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	b, err := r.o.Client.Get(ctx, r.o.Prefix+key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return decodeEntry(b)
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key string, e *Entry, keep time.Duration) error {
	if r.down() {
		return nil
	}
	b, err := e.encode()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	// Whole milliseconds, at least one: PX 0 is an error.
	keep = max(keep.Round(time.Millisecond), time.Millisecond)
	if err := r.o.Client.Set(ctx, r.o.Prefix+key, b, keep).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return nil
}

// Close implements Store; the client is the limiter's to close.
func (r *Redis) Close() error { return nil }
