package ratelimit

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/proxy/ratelimit/redistest"
)

// runBackend runs rb's probe loop until the test ends.
func runBackend(t *testing.T, rb *Redis) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rb.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

var oomErrors = regexp.MustCompile(`errorstat_OOM:count=(\d+)`)

// refusedWrites is how many commands Redis refused for lack of memory.
func refusedWrites(t *testing.T, addr string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	info, err := c.Info(context.Background(), "errorstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := oomErrors.FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestRedisOutOfMemoryStaysDown: a Redis that answers PING but refuses
// writes (maxmemory reached with noeviction) keeps the replica on its local
// buckets, without flapping back at each probe, until it accepts writes.
func TestRedisOutOfMemoryStaysDown(t *testing.T) {
	srv := redistest.Start(t)
	var st states
	lim := Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 10, Burst: 10}}}
	l, rb := newRedisLimiter(t, srv.Addr, lim, RedisOptions{ProbeInterval: 10 * time.Millisecond, OnStateChange: st.add})
	runBackend(t, rb)
	srv.Do(t, "CONFIG", "SET", "maxmemory-policy", "noeviction")
	srv.Do(t, "CONFIG", "SET", "maxmemory", "1")

	if d := decide(t, l, "sync", "admin"); !d.Allowed {
		t.Fatalf("a request with Redis out of memory: %+v, want decided on the local share", d)
	}
	before := refusedWrites(t, srv.Addr)
	waitUntil(t, "ten more probes refused by Redis", func() bool { return refusedWrites(t, srv.Addr) >= before+10 })
	if got := st.get(); !slices.Equal(got, []bool{true, false}) || rb.Up() {
		t.Fatalf("state changes %v (up now: %v) with Redis out of memory, want [true false] and down", got, rb.Up())
	}
	srv.Do(t, "CONFIG", "SET", "maxmemory", "0")
	waitUntil(t, "the backend up again", rb.Up)
	if got := st.get(); !slices.Equal(got, []bool{true, false, true}) {
		t.Fatalf("state changes %v, want [true false true]", got)
	}
}

// TestRedisClientLogGoesThroughZap: go-redis's own lines (a failed dial
// while Redis is away) reach the zap logger installed by InstallRedisLogger.
func TestRedisClientLogGoesThroughZap(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	InstallRedisLogger(zap.New(core), time.Hour)
	t.Cleanup(func() { InstallRedisLogger(zap.NewNop(), 0) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	_, rb := newRedisLimiter(t, addr, Limits{}, RedisOptions{ProbeInterval: 5 * time.Millisecond, Timeout: 200 * time.Millisecond})
	runBackend(t, rb)
	waitUntil(t, "a line from the redis client", func() bool { return logs.FilterMessage("redis client").Len() >= 1 })
	line := logs.FilterMessage("redis client").All()[0]
	if detail := fmt.Sprint(line.ContextMap()["detail"]); !strings.Contains(detail, "failed to dial") {
		t.Errorf("the line's detail %q, want go-redis's failed dial", detail)
	}
}

// TestRedisClientLogIsRateLimited: however often go-redis logs, one line per
// interval, carrying the number of lines left out since the last.
func TestRedisClientLogIsRateLimited(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	const interval = 200 * time.Millisecond
	l := newRedisLogger(zap.New(core), interval)
	start := time.Now()
	for range 50 {
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 1, "connection refused")
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("%d lines for 50 calls within %v, want 1", n, interval)
	}
	calls := 50
	waitUntil(t, "a second line after the interval", func() bool {
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 1, "connection refused")
		calls++
		return logs.Len() == 2
	})
	if time.Since(start) < interval {
		t.Errorf("a second line within %v", interval)
	}
	if left, _ := logs.All()[1].ContextMap()["lines_left_out"].(int64); int(left) != calls-2 {
		t.Errorf("second line: %d lines left out, want %d", left, calls-2)
	}
}
