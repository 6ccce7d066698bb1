package keyvault_test

import (
	"sync"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
)

// clock is a settable test clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRejectionsSteerPickToStandby(t *testing.T) {
	// Version 1 is active (later not_before); version 0 is its standby.
	v := vaultWith(t, "not_before = 2026-01-01T00:00:00Z", "not_before = 2026-02-01T00:00:00Z")
	k := v.Key("k")
	old, cur := k.Versions[0], k.Versions[1]
	clk := newClock(testNow)
	rej, err := keyvault.NewRejections(keyvault.RejectionsOptions{CoolDown: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Pick(clk.Now(), rej); got != cur {
		t.Fatalf("before any rejection Pick = %v, want %v", got, cur)
	}

	until, first := rej.Reject(cur)
	if !first || !until.Equal(testNow.Add(time.Minute)) {
		t.Fatalf("Reject = %v, %v", until, first)
	}
	if _, again := rej.Reject(cur); again {
		t.Error("a second refusal within the cool-down was reported as the first")
	}
	if got := k.Pick(clk.Now(), rej); got != old {
		t.Errorf("Pick with the active version rejected = %v, want the standby %v", got, old)
	}
	if got, err := v.SelectAvoiding("svc", clk.Now(), rej); err != nil || got != old {
		t.Errorf("SelectAvoiding = %v, %v", got, err)
	}
	if s := k.StateWith(cur, clk.Now(), rej); s != keyvault.StateRejected {
		t.Errorf("state of the refused version = %s", s)
	}
	if s := k.StateWith(old, clk.Now(), rej); s != keyvault.StateActive {
		t.Errorf("state of the standby = %s", s)
	}
	if got := k.Standby(clk.Now(), cur, rej); got != old {
		t.Errorf("Standby after the active was refused = %v", got)
	}

	// Both refused: the standby is gone, and requests carry the plain active
	// version again (the broadcaster's answer then reaches the caller).
	rej.Reject(old)
	if got := k.Standby(clk.Now(), old, rej); got != nil {
		t.Errorf("Standby with every version refused = %v", got)
	}
	if got := k.Pick(clk.Now(), rej); got != cur {
		t.Errorf("Pick with every version refused = %v, want the active %v", got, cur)
	}

	// The cool-down ends: everything is back to normal.
	clk.Advance(time.Minute)
	if rej.Rejected(cur) || rej.Rejected(old) {
		t.Error("still rejected after the cool-down")
	}
	if got := k.Pick(clk.Now(), rej); got != cur {
		t.Errorf("Pick after the cool-down = %v", got)
	}
	if _, first := rej.Reject(cur); !first {
		t.Error("a refusal after the cool-down was not reported as new")
	}
}

func TestRejectionOutlivesReload(t *testing.T) {
	a := vaultWith(t, "")
	b := vaultWith(t, "") // the same secret, parsed again (a reload)
	rej, _ := keyvault.NewRejections(keyvault.RejectionsOptions{})
	rej.Reject(a.Key("k").Versions[0])
	if !rej.Rejected(b.Key("k").Versions[0]) {
		t.Error("the rejection did not carry over to the reloaded vault's version")
	}
	if rej.CoolDown() != keyvault.DefaultCoolDown {
		t.Errorf("default cool-down %v", rej.CoolDown())
	}
	var none *keyvault.Rejections
	if none.Rejected(a.Key("k").Versions[0]) {
		t.Error("a nil Rejections rejected something")
	}
	if _, err := keyvault.NewRejections(keyvault.RejectionsOptions{CoolDown: -time.Second}); err == nil {
		t.Error("a negative cool-down was accepted")
	}
}

func TestSelectAvoidingDoesNotAllocate(t *testing.T) {
	v := vaultWith(t, "", "")
	rej, _ := keyvault.NewRejections(keyvault.RejectionsOptions{})
	rej.Reject(v.Key("k").Versions[1])
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.SelectAvoiding("svc", testNow, rej); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("SelectAvoiding allocates %v times per call", allocs)
	}
}

func TestConcurrentRejectAndPick(t *testing.T) {
	v := vaultWith(t, "", "")
	k := v.Key("k")
	rej, _ := keyvault.NewRejections(keyvault.RejectionsOptions{})
	var wg sync.WaitGroup
	firsts := make(chan bool, 64)
	for range 8 {
		wg.Go(func() {
			for range 8 {
				_, first := rej.Reject(k.Versions[1])
				firsts <- first
				if k.Pick(testNow, rej) != k.Versions[0] {
					t.Error("Pick returned the refused version")
				}
			}
		})
	}
	wg.Wait()
	close(firsts)
	n := 0
	for f := range firsts {
		if f {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d refusals reported as the first, want 1", n)
	}
}
