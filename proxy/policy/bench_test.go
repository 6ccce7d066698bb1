package policy

import "testing"

// BenchmarkNormalize is the path check every request goes through.
func BenchmarkNormalize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Normalize("/api/v2/playlists/12/tracks/3/"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllowLastRule is the route decision for a caller with a rule set whose
// matching rule is the last of five. It must not allocate.
func BenchmarkAllowLastRule(b *testing.B) {
	p, err := New(Options{
		Sets: map[string][]string{"editor": {
			"GET /api/v2/history/", "GET /api/v2/channels/", "POST /api/v2/playlists/",
			"* /api/v2/playlists/*/tracks/**", "GET /api/v2/**",
		}},
		Callers: map[string]string{"playlist-sync": "editor"},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !p.Allow("playlist-sync", "GET", "/api/v2/playlists/12/").Allowed {
			b.Fatal("refused")
		}
	}
}
