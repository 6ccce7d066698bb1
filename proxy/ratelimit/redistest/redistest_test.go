package redistest

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestStopAndRestartOnTheSamePort: the outage the rate-limit tests simulate
// is real: after Stop nothing listens, after Restart the same address
// answers again (with an empty database: no persistence).
func TestStopAndRestartOnTheSamePort(t *testing.T) {
	s := Start(t)
	if got := s.Do(t, "SET", "k", "v"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	s.Stop(t)
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("something still listens after Stop")
	}
	s.Restart(t)
	if got := s.Do(t, "GET", "k"); got != "$-1" {
		t.Fatalf("GET after a restart: %q, want nil (no persistence)", got)
	}
}
