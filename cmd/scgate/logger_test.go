package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
)

// Access-log lines are written in batches, everything else at once;
// stopping the logger writes what is pending, and every line stays whole.
func TestAccessLogIsBatchedOtherLinesAreNot(t *testing.T) {
	var out bytes.Buffer
	logger, stop, err := gateway.NewLogger(config.Log{Level: "info", Format: "json"}, &out, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	access := logger.Named("access")
	for i := range 3 {
		access.Info("request", zap.Int("n", i))
	}
	logger.Warn("something to see now")
	if got := out.String(); !strings.Contains(got, "something to see now") || strings.Contains(got, `"request"`) {
		t.Fatalf("before the flush:\n%s", got)
	}
	stop()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines after stop, want 4:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a whole JSON line: %q", l)
		}
	}
}

func TestUnbufferedLoggerWritesAccessLinesAtOnce(t *testing.T) {
	var out bytes.Buffer
	logger, stop, err := gateway.NewLogger(config.Log{Level: "info", Format: "console"}, &out, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	logger.Named("access").Info("request")
	if !strings.Contains(out.String(), "request") {
		t.Fatalf("got %q", out.String())
	}
}
