package ratelimit

import (
	"context"
	"testing"
	"time"
)

// State reads tokens, the concurrency places held and an upstream pause
// without taking anything.
func TestStateReadsWithoutTaking(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := New(Options{Now: func() time.Time { return now }, Limits: Limits{
		Caller: CallerLimits{Bucket: Bucket{Rate: 1, Burst: 4}, Concurrency: 3},
		Key:    Bucket{Rate: 1, Burst: 10},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := l.State("c", "k")
	if st.Caller.Tokens != 4 || !st.Caller.Known || st.Key.Tokens != 10 || st.InFlight != 0 || st.Concurrency != 3 {
		t.Fatalf("fresh state %+v", st)
	}
	a, err := l.Admit(ctx, "c", "k")
	if err != nil || !a.Allowed {
		t.Fatal(a, err)
	}
	defer a.Release()
	if err := l.Pause(ctx, "k", 7*time.Second); err != nil {
		t.Fatal(err)
	}
	for range 3 { // reading twice must not spend anything
		st = l.State("c", "k")
	}
	if st.Caller.Tokens != 3 || st.Key.Tokens != 9 || st.InFlight != 1 || st.PausedFor != 7*time.Second || !st.PauseKnown {
		t.Errorf("after one request and a pause: %+v", st)
	}
}
