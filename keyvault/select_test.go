package keyvault_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
)

// Secrets for the selection tests; each version's index is readable from its
// prefix ("aaaaaaa0" is version 0, and so on).
func versionSecret(i int) string {
	return strings.Repeat(string(rune('a'+i)), 7) + string(rune('0'+i)) + ".selectionTestPrivatePart"
}

// vaultWith builds a vault with caller "svc" using key "k", whose versions
// carry the given extra TOML lines (bounds).
func vaultWith(t testing.TB, bounds ...string) *keyvault.Vault {
	t.Helper()
	var b strings.Builder
	b.WriteString("[callers]\nsvc = \"k\"\n")
	for i, bound := range bounds {
		b.WriteString("[[keys.k]]\nsecret = \"" + versionSecret(i) + "\"\n" + bound + "\n")
	}
	v, _, err := keyvault.Parse("select.toml", []byte(b.String()), keyvault.LoadOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSelect(t *testing.T) {
	const (
		jan = "2027-01-01T00:00:00Z"
		feb = "2027-02-01T00:00:00Z"
		mar = "2027-03-01T00:00:00Z"
	)
	tests := []struct {
		name   string
		bounds []string
		now    string
		want   int // index of the active version; -1: none valid
		states string
	}{
		{"one unbounded version", []string{""}, feb, 0, "active"},
		{"not_before is inclusive", []string{"not_before = " + feb}, feb, 0, "active"},
		{"before not_before", []string{"not_before = " + feb}, jan, -1, "pending"},
		{"expires is exclusive", []string{"expires = " + feb}, feb, -1, "expired"},
		{"just before expires", []string{"expires = " + feb}, "2027-01-31T23:59:59Z", 0, "active"},
		{"later not_before wins", []string{"not_before = " + jan, "not_before = " + feb}, mar, 1, "standby,active"},
		{"later not_before wins when listed first", []string{"not_before = " + feb, "not_before = " + jan}, mar, 0, "active,standby"},
		{"missing not_before counts as oldest", []string{"", "not_before = " + jan}, feb, 1, "standby,active"},
		{"missing not_before loses even when listed last", []string{"not_before = " + jan, ""}, feb, 0, "active,standby"},
		{"tie: the one listed last", []string{"not_before = " + jan, "not_before = " + jan}, feb, 1, "standby,active"},
		{"tie of unbounded: the one listed last", []string{"", ""}, feb, 1, "standby,active"},
		{"staged version not yet valid", []string{"expires = " + mar, "not_before = " + mar}, feb, 0, "active,pending"},
		{"rotation hand-over", []string{"expires = " + mar, "not_before = " + mar}, mar, 1, "expired,active"},
		{"overlap during rotation", []string{"expires = " + mar, "not_before = " + feb}, feb, 1, "standby,active"},
		{"expired newer falls back to older", []string{"", "not_before = " + jan + "\nexpires = " + feb}, mar, 0, "active,expired"},
		{"none valid", []string{"expires = " + jan, "not_before = " + mar}, feb, -1, "expired,pending"},
		{"offsets compare as instants", []string{"not_before = 2027-02-01T01:00:00+02:00"}, "2027-01-31T23:00:00Z", 0, "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vaultWith(t, tt.bounds...)
			now := at(tt.now)
			got, err := v.Select("svc", now)
			if tt.want < 0 {
				if got != nil || !errors.Is(err, keyvault.ErrNoValidKey) {
					t.Fatalf("Select = %v, %v; want ErrNoValidKey", got, err)
				}
				if !strings.Contains(err.Error(), `key "k"`) || strings.Contains(err.Error(), "selectionTest") {
					t.Errorf("error %q should name the key and no secret", err)
				}
			} else if err != nil || got.Index != tt.want || got.Secret.Value() != versionSecret(tt.want) {
				t.Fatalf("Select = %v, %v; want version %d", got, err, tt.want)
			}
			k := v.Key("k")
			if a := k.Active(now); a != got {
				t.Errorf("Active = %v, Select = %v", a, got)
			}
			var states []string
			for _, ver := range k.Versions {
				states = append(states, string(k.State(ver, now)))
			}
			if s := strings.Join(states, ","); s != tt.states {
				t.Errorf("states = %s, want %s", s, tt.states)
			}
		})
	}
}

func TestSelectUnknownCaller(t *testing.T) {
	v := vaultWith(t, "")
	for _, caller := range []string{"nobody", "", "SVC", "k"} {
		if got, err := v.Select(caller, testNow); got != nil || err != keyvault.ErrUnknownCaller {
			t.Errorf("Select(%q) = %v, %v; want ErrUnknownCaller", caller, got, err)
		}
	}
	var nilVault *keyvault.Vault
	if _, err := nilVault.Select("svc", testNow); err != keyvault.ErrUnknownCaller {
		t.Errorf("nil vault: %v", err)
	}
}

func TestSelectAllocatesNothing(t *testing.T) {
	v := vaultWith(t, "expires = 2027-01-01T00:00:00Z", "not_before = 2026-01-01T00:00:00Z", "not_before = 2028-01-01T00:00:00Z")
	for _, tc := range []struct {
		name, caller string
		now          time.Time
	}{
		{"active", "svc", testNow},
		{"no valid key", "svc", at("2025-01-01T00:00:00Z")},
		{"unknown caller", "nobody", testNow},
	} {
		if n := testing.AllocsPerRun(1000, func() { _, _ = v.Select(tc.caller, tc.now) }); n != 0 {
			t.Errorf("%s: Select allocates %v times per call", tc.name, n)
		}
	}
}

func BenchmarkSelect(b *testing.B) {
	v := vaultWith(b, "expires = 2027-01-01T00:00:00Z", "not_before = 2026-01-01T00:00:00Z", "not_before = 2028-01-01T00:00:00Z")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Select("svc", testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}
