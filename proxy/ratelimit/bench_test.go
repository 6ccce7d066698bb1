package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// benchLimiter has 10,000 callers sharing 100 keys, each caller with its own
// bucket, a key bucket, and overrides for one caller in ten, as a large
// vault would. The clock moves fast enough that most decisions allow.
func benchLimiter(b *testing.B) (*Limiter, []string, []string) {
	const callers, keys = 10_000, 100
	lim := Limits{
		Caller:  CallerLimits{Bucket: Bucket{Rate: 50, Burst: 100}},
		Callers: map[string]CallerLimits{},
		Key:     Bucket{Rate: 1000, Burst: 2000},
	}
	names := make([]string, callers)
	keyOf := make([]string, callers)
	for i := range names {
		names[i] = "spiffe://prod.example/ns/radio/sa/caller-" + strconv.Itoa(i)
		keyOf[i] = "key-" + strconv.Itoa(i%keys)
		if i%10 == 0 {
			lim.Callers[names[i]] = CallerLimits{Bucket: Bucket{Rate: 5, Burst: 10}, Mode: Wait, MaxWait: time.Second}
		}
	}
	start := time.Unix(1_800_000_000, 0)
	var n int64
	l, err := New(Options{Limits: lim, Now: func() time.Time { n++; return start.Add(time.Duration(n) * time.Microsecond) }})
	if err != nil {
		b.Fatal(err)
	}
	// Warm every bucket, as a running gateway has.
	for i := range names {
		if _, err := l.Decide(context.Background(), names[i], keyOf[i]); err != nil {
			b.Fatal(err)
		}
	}
	return l, names, keyOf
}

// BenchmarkDecide10kCallers is the limiter's decision for one request: both
// buckets, local backend, 10,000 callers in the vault.
func BenchmarkDecide10kCallers(b *testing.B) {
	l, names, keyOf := benchLimiter(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		j := (i * 7919) % len(names) // stride over the callers, not one hot bucket
		if _, err := l.Decide(ctx, names[j], keyOf[j]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAdmit10kCallersParallel is the whole limit stage (concurrency cap
// included) from several goroutines at once.
func BenchmarkAdmit10kCallersParallel(b *testing.B) {
	l, names, keyOf := benchLimiter(b)
	lim := *l.limits.Load()
	lim.Caller.Concurrency = 64
	lim.Callers = nil // reject mode everywhere: nothing sleeps
	if err := l.SetLimits(lim); err != nil {
		b.Fatal(err)
	}
	l.now = time.Now
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			j := (i * 7919) % len(names)
			a, err := l.Admit(ctx, names[j], keyOf[j])
			if err != nil {
				b.Fatal(err)
			}
			a.Release()
			i++
		}
	})
}
