package keyvault_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

func TestCoveredUntil(t *testing.T) {
	const (
		jan = "2027-01-01T00:00:00Z"
		feb = "2027-02-01T00:00:00Z"
		mar = "2027-03-01T00:00:00Z"
		apr = "2027-04-01T00:00:00Z"
	)
	tests := []struct {
		name   string
		bounds []string
		now    string
		want   string // "" for covered forever
	}{
		{"unbounded", []string{""}, jan, ""},
		{"one version with expiry", []string{"expires = " + feb}, jan, feb},
		{"rotation with overlap", []string{"expires = " + mar, "not_before = " + feb + "\nexpires = " + apr}, jan, apr},
		{"rotation hand-over at the instant", []string{"expires = " + feb, "not_before = " + feb}, jan, ""},
		{"gap between versions", []string{"expires = " + feb, "not_before = " + mar}, jan, feb},
		{"nothing valid now", []string{"not_before = " + feb}, jan, jan},
		{"all expired", []string{"expires = " + jan}, feb, feb},
		{"listed in any order", []string{"not_before = " + feb + "\nexpires = " + apr, "expires = " + mar}, jan, apr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := vaultWith(t, tt.bounds...).Key("k").CoveredUntil(at(tt.now))
			if tt.want == "" {
				if !got.IsZero() {
					t.Fatalf("CoveredUntil = %v, want covered forever", got)
				}
				return
			}
			if !got.Equal(at(tt.want)) {
				t.Fatalf("CoveredUntil = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestExpiryWarnerOncePerDay(t *testing.T) {
	// Version 0 expires in 10 days and nothing follows it; version 1 of key
	// "other" expires in 19 days, outside the 14-day window.
	v := vaulttest.Parse(t, `
[callers]
svc = "k"
[[keys.k]]
secret = "Expire01.`+leakMarker+`"
expires = 2026-06-11T12:00:00Z
[[keys.other]]
secret = "Expire02.`+leakMarker+`"
expires = 2026-06-20T12:00:00Z
`)
	clk := newClock(testNow)
	core, logs := observer.New(zapcore.InfoLevel)
	w, err := keyvault.NewExpiryWarner(keyvault.ExpiryWarnerOptions{Logger: zap.New(core), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if n := w.Check(v); n != 1 {
		t.Fatalf("first check warned %d times, want 1", n)
	}
	entry := logs.All()[0]
	f := entry.ContextMap()
	if entry.Level != zapcore.WarnLevel || f["key"] != "k" || f["prefix"] != "Expire01" || f["expires_in"] != 240*time.Hour ||
		f["key_lapses_at"] == nil {
		t.Errorf("warning = %s %v", entry.Message, f)
	}
	clk.Advance(23 * time.Hour)
	if n := w.Check(v); n != 0 {
		t.Errorf("warned again after 23h (%d)", n)
	}
	clk.Advance(time.Hour)
	if n := w.Check(v); n != 1 {
		t.Errorf("not warned again after a day (%d)", n)
	}
	// 11 days in, "other" is within 14 days too; "k" has expired.
	clk.Advance(10 * 24 * time.Hour)
	if n := w.Check(v); n != 1 || logs.All()[logs.Len()-1].ContextMap()["key"] != "other" {
		t.Errorf("after 11 days: %d warnings, last %v", n, logs.All()[logs.Len()-1].ContextMap())
	}
	for _, e := range logs.All() {
		if containsLeak(e) {
			t.Errorf("warning leaks a secret: %v", e.ContextMap())
		}
	}
}

func TestExpiryWarnerSaysWhenAnotherVersionTakesOver(t *testing.T) {
	v := vaulttest.Parse(t, `
[callers]
svc = "k"
[[keys.k]]
secret = "Expire01.`+leakMarker+`"
expires = 2026-06-11T12:00:00Z
[[keys.k]]
secret = "Expire03.`+leakMarker+`"
not_before = 2026-06-05T00:00:00Z
`)
	core, logs := observer.New(zapcore.InfoLevel)
	w, _ := keyvault.NewExpiryWarner(keyvault.ExpiryWarnerOptions{Logger: zap.New(core), Now: fixedNow})
	w.Check(v)
	if logs.FilterMessage("key version expires soon; another version of the key takes over").Len() != 1 {
		t.Errorf("log = %v", logs.All())
	}
}

func TestExpiryWarnerRun(t *testing.T) {
	v := vaulttest.Parse(t, "[callers]\nsvc = \"k\"\n[[keys.k]]\nsecret = \"Expire01."+leakMarker+"\"\nexpires = 2026-06-11T12:00:00Z\n")
	clk := newClock(testNow)
	core, logs := observer.New(zapcore.InfoLevel)
	w, _ := keyvault.NewExpiryWarner(keyvault.ExpiryWarnerOptions{
		Logger: zap.New(core), Now: clk.Now, Every: time.Nanosecond, Period: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func() *keyvault.Vault { return v }) }()
	// Run checks at once and then on its period.
	vaulttest.Eventually(t, 5*time.Second, "several periodic checks", func() bool {
		clk.Advance(time.Second)
		return logs.Len() >= 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := keyvault.NewExpiryWarner(keyvault.ExpiryWarnerOptions{WarnBefore: -1}); err == nil {
		t.Error("a negative WarnBefore was accepted")
	}
}

func containsLeak(e observer.LoggedEntry) bool {
	return strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), leakMarker)
}
