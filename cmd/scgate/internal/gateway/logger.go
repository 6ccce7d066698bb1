package gateway

import (
	"errors"
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
)

// AccessLogFlush is how late an access-log line may reach the log: the
// access log is written in batches (one write per batch instead of one per
// request, which was about 4% of the gateway's CPU under load); every other
// line is written at once.
const AccessLogFlush = time.Second

// NewLogger builds the zap logger of [log]. With accessFlush > 0, the lines
// of the "access" logger are buffered for at most accessFlush; stop flushes
// them and ends the flushing goroutine, and must be called before exit.
func NewLogger(c config.Log, w io.Writer, accessFlush time.Duration) (_ *zap.Logger, stop func(), _ error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, nil, err
	}
	ecfg := zap.NewProductionEncoderConfig()
	ecfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		ecfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ecfg)
	} else {
		enc = zapcore.NewJSONEncoder(ecfg)
	}
	// One lock for every writer of w, so that a batch of access lines and
	// a line written at once never interleave.
	ws := zapcore.Lock(zapcore.AddSync(w))
	core := zapcore.NewCore(enc, ws, level)
	if accessFlush <= 0 {
		return zap.New(core), func() {}, nil
	}
	buf := &zapcore.BufferedWriteSyncer{WS: ws, Size: 256 << 10, FlushInterval: accessFlush}
	access := zapcore.NewCore(enc.Clone(), buf, level)
	return zap.New(accessSplit{Core: core, access: access}), func() { _ = buf.Stop() }, nil
}

// accessSplit sends the entries of the "access" logger to its own core and
// every other entry to the embedded one.
type accessSplit struct {
	zapcore.Core
	access zapcore.Core
}

func (s accessSplit) With(fields []zapcore.Field) zapcore.Core {
	return accessSplit{Core: s.Core.With(fields), access: s.access.With(fields)}
}

func (s accessSplit) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.LoggerName == "access" {
		return s.access.Check(e, ce)
	}
	return s.Core.Check(e, ce)
}

func (s accessSplit) Sync() error { return errors.Join(s.access.Sync(), s.Core.Sync()) }
