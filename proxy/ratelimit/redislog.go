package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// redisLogger takes go-redis's own log lines (plain text on stderr by
// default, one per failed dial: several a second while Redis is down) into
// zap, at most one line per interval, with the number of lines left out.
type redisLogger struct {
	log *zap.Logger

	mu     sync.Mutex
	every  rate.Sometimes
	missed int
}

// Printf implements go-redis's internal logging interface.
func (l *redisLogger) Printf(_ context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	l.mu.Lock()
	defer l.mu.Unlock()
	logged := false
	l.every.Do(func() {
		logged = true
		l.log.Warn("redis client", zap.String("detail", msg), zap.Int("lines_left_out", l.missed))
		l.missed = 0
	})
	if !logged {
		l.missed++
	}
}

// InstallRedisLogger sends go-redis's log lines to log, at most one per
// interval (default 10s). go-redis has one logger for the whole process, so
// this is for the binary to call once at start, not for libraries.
func InstallRedisLogger(log *zap.Logger, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	redis.SetLogger(newRedisLogger(log, interval))
}

func newRedisLogger(log *zap.Logger, interval time.Duration) *redisLogger {
	return &redisLogger{log: log, every: rate.Sometimes{First: 1, Interval: interval}}
}
