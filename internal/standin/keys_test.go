package standin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

func hashPrefix(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])[:8]
}

func TestPrefix(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{testKey, "Ab3dEf7h"},
		{"abcdefgh.ijk.lmn.opq.rstuvw", "abcdefgh"},              // the first dot counts
		{"abcdefgh.ijk.lmn", hashPrefix("abcdefgh.ijk.lmn")},     // too short after the dot: hashed
		{"12345678.", hashPrefix("12345678.")},                   // empty secret part: hashed
		{"Ab3dEf7.Q1w2E3r4", hashPrefix("Ab3dEf7.Q1w2E3r4")},     // 7 characters
		{"Ab3dEf7h9.Q1w2E3r4", hashPrefix("Ab3dEf7h9.Q1w2E3r4")}, // 9 characters
		{"Ab3-Ef7h.Q1w2E3r4", hashPrefix("Ab3-Ef7h.Q1w2E3r4")},   // not alphanumeric
		{"Äb3dEf7.Q1w2E3r4", hashPrefix("Äb3dEf7.Q1w2E3r4")},     // 8 bytes but not ASCII
		{"Ab3dEf7hQ1w2E3r4", hashPrefix("Ab3dEf7hQ1w2E3r4")},     // no dot
		{"", "sha256:e3b0c442"},
	} {
		if got := Prefix(tc.key); got != tc.want {
			t.Errorf("Prefix(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestKeyRules(t *testing.T) {
	const (
		notProvided = "Authentication credentials were not provided."
		invalid     = "Invalid API key."
	)
	playlist := `{"name": "Night", "is_random": false, "server": 1}`
	channel := `{"server": 1, "port": 8000, "mount_point": "/x"}`
	event := `{"server": 1, "name": "Show", "start_date": "2026-01-20", "start_time": "10:00"}`
	for _, tc := range []struct {
		name         string
		public       bool
		method, path string
		hdr          http.Header
		body         string
		status       int
		detail       string
	}{
		{"history is public", false, "GET", "/api/v2/history/", nil, "", 200, ""},
		{"history ignores a wrong key", false, "GET", "/api/v2/history/", withKey(otherKey), "", 200, ""},
		{"channels GET is public", false, "GET", "/api/v2/channels/", nil, "", 200, ""},
		{"grid GET is public", false, "GET", "/api/v2/grid/", nil, "", 200, ""},
		{"playlists GET without key", false, "GET", "/api/v2/playlists/", nil, "", 403, notProvided},
		{"playlists GET wrong key", false, "GET", "/api/v2/playlists/", withKey(otherKey), "", 403, invalid},
		{"playlists GET empty key", false, "GET", "/api/v2/playlists/", http.Header{"Sc-Api-Key": {""}}, "", 403, invalid},
		{"playlists GET key", false, "GET", "/api/v2/playlists/", withKey(testKey), "", 200, ""},
		{"playlist GET without key", false, "GET", "/api/v2/playlists/1/", nil, "", 403, notProvided},
		{"playlist GET key", false, "GET", "/api/v2/playlists/1/", withKey(testKey), "", 200, ""},
		{"unknown playlist: key first", false, "GET", "/api/v2/playlists/99/", nil, "", 403, notProvided},
		{"playlists GET public revision", true, "GET", "/api/v2/playlists/", nil, "", 200, ""},
		{"playlist GET public revision", true, "GET", "/api/v2/playlists/2/", nil, "", 200, ""},
		{"playlists POST public revision", true, "POST", "/api/v2/playlists/", nil, playlist, 403, notProvided},
		{"playlists POST wrong key", false, "POST", "/api/v2/playlists/", withKey(otherKey), playlist, 403, invalid},
		{"playlists POST key", false, "POST", "/api/v2/playlists/", withKey(testKey), playlist, 201, ""},
		{"channels POST without key", false, "POST", "/api/v2/channels/", nil, channel, 403, notProvided},
		{"channels POST wrong key", false, "POST", "/api/v2/channels/", withKey(otherKey), channel, 403, invalid},
		{"channels POST key", false, "POST", "/api/v2/channels/", withKey(testKey), channel, 201, ""},
		{"grid POST without key", false, "POST", "/api/v2/grid/", nil, event, 403, notProvided},
		{"grid POST wrong key", false, "POST", "/api/v2/grid/", withKey(otherKey), event, 403, invalid},
		{"grid POST key", false, "POST", "/api/v2/grid/", withKey(testKey), event, 201, ""},
		{"two copies of the valid key", false, "GET", "/api/v2/playlists/",
			http.Header{"Sc-Api-Key": {testKey, testKey}}, "", 403, invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, Options{Keys: []string{testKey}, PlaylistsGETPublic: tc.public}, false)
			b := h.expect(tc.method, tc.path, tc.hdr, tc.body, tc.status)
			if tc.detail != "" {
				wantDetail(t, b, tc.detail)
			}
			reqs := h.sc.Requests()
			if len(reqs) != 1 {
				t.Fatalf("recorded %d requests, want 1", len(reqs))
			}
			if got, want := reqs[0].Accepted, tc.status != 403; got != want {
				t.Errorf("Accepted = %v, want %v", got, want)
			}
			if reqs[0].Status != tc.status {
				t.Errorf("recorded status %d, want %d", reqs[0].Status, tc.status)
			}
		})
	}
}

func TestSetKeysRevokes(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, true)
	h.expect("GET", "/api/v2/playlists/", withKey(testKey), "", 200)
	h.expect("GET", "/api/v2/playlists/", withKey(otherKey), "", 403)

	h.sc.SetKeys([]string{otherKey, ""}) // the empty value is skipped, never matched
	wantDetail(t, h.expect("GET", "/api/v2/playlists/", withKey(testKey), "", 403), "Invalid API key.")
	h.expect("GET", "/api/v2/playlists/", withKey(otherKey), "", 200)
	h.expect("GET", "/api/v2/playlists/", http.Header{"Sc-Api-Key": {""}}, "", 403)

	h.sc.SetKeys([]string{testKey, otherKey}) // overlap during a rotation
	h.expect("GET", "/api/v2/playlists/", withKey(testKey), "", 200)
	h.expect("GET", "/api/v2/playlists/", withKey(otherKey), "", 200)

	h.sc.SetKeys(nil)
	h.expect("GET", "/api/v2/playlists/", withKey(testKey), "", 403)

	var accepted []bool
	for _, rq := range h.sc.Requests() {
		accepted = append(accepted, rq.Accepted)
	}
	if want := []bool{true, false, false, true, false, true, true, false}; !slices.Equal(accepted, want) {
		t.Fatalf("Accepted sequence %v, want %v", accepted, want)
	}
}

// TestSetKeysConcurrent changes the keys while requests are in flight; -race checks the rest.
func TestSetKeysConcurrent(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				status, err := h.try("GET", "/api/v2/playlists/?server=1", withKey(testKey))
				if err != nil || (status != 200 && status != 403) {
					t.Errorf("status %d, error %v", status, err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			if i%2 == 0 {
				h.sc.SetKeys([]string{otherKey})
			} else {
				h.sc.SetKeys([]string{testKey})
			}
		}
	})
	wg.Wait()
	if n := len(h.sc.Requests()); n != 100 {
		t.Fatalf("recorded %d requests, want 100", n)
	}
}

func TestRecordsKeyCopiesAsPrefixes(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	malformed := "not-a-streaming-center-key"
	// Three spellings of the header: the client writes them as given, the server merges them.
	hdr := http.Header{
		"SC-API-KEY": {testKey},
		"sc-api-key": {otherKey},
		"Sc-Api-Key": {malformed},
		"X-Other":    {"kept"},
	}
	wantDetail(t, h.expect("GET", "/api/v2/playlists/?server=1", hdr, "", 403), "Invalid API key.")

	reqs := h.sc.Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %d requests", len(reqs))
	}
	rq := reqs[0]
	want := []string{"Ab3dEf7h", "Zz9yXx8w", hashPrefix(malformed)}
	got := slices.Sorted(slices.Values(rq.KeyPrefixes))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("KeyPrefixes %v, want %v in any order", rq.KeyPrefixes, want)
	}
	if hv := slices.Sorted(slices.Values(rq.Header.Values(KeyHeader))); !slices.Equal(hv, want) {
		t.Errorf("recorded header values %v, want %v", hv, want)
	}
	if rq.Accepted || rq.Status != 403 || rq.Method != "GET" || rq.Path != "/api/v2/playlists/" ||
		rq.RawQuery != "server=1" || rq.Host != h.ts.Listener.Addr().String() || rq.Header.Get("X-Other") != "kept" {
		t.Errorf("recorded %+v", rq)
	}
	dump := fmt.Sprintf("%+v %#v", reqs, reqs)
	for _, secret := range []string{testKey, otherKey, malformed, testKey[9:], otherKey[9:]} {
		if strings.Contains(dump, secret) {
			t.Fatalf("Requests() contains %q", secret)
		}
	}
}

// TestAnyHeaderCasing calls the handler directly, where header names need not be canonical.
func TestAnyHeaderCasing(t *testing.T) {
	sc, err := New(Options{Keys: []string{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/v2/playlists/", nil)
	r.Header["sc-api-key"] = []string{testKey}
	w := httptest.NewRecorder()
	sc.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("lower-case header: status %d", w.Code)
	}
	r.Header["SC-API-KEY"] = []string{testKey}
	w = httptest.NewRecorder()
	sc.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Fatalf("two spellings: status %d, want 403", w.Code)
	}
	reqs := sc.Requests()
	if len(reqs) != 2 || !slices.Equal(reqs[1].KeyPrefixes, []string{"Ab3dEf7h", "Ab3dEf7h"}) {
		t.Fatalf("recorded %+v", reqs)
	}
	if v := reqs[1].Header["sc-api-key"]; !slices.Equal(v, []string{"Ab3dEf7h"}) {
		t.Fatalf("recorded header %v", reqs[1].Header)
	}
	if r.Header["sc-api-key"][0] != testKey {
		t.Fatal("recording changed the caller's header")
	}
}

func TestRequestLog(t *testing.T) {
	h := start(t, Options{MaxRecorded: 3}, false)
	for i := range 5 {
		h.expect("GET", fmt.Sprintf("/api/v2/history/?limit=%d", i+1), nil, "", 200)
	}
	reqs := h.sc.Requests()
	var queries []string
	for _, rq := range reqs {
		queries = append(queries, rq.RawQuery)
	}
	if want := []string{"limit=3", "limit=4", "limit=5"}; !slices.Equal(queries, want) {
		t.Fatalf("kept %v, want the newest %v", queries, want)
	}
	reqs[0].Header.Set("X-Edited", "1")
	if h.sc.Requests()[0].Header.Get("X-Edited") != "" {
		t.Fatal("Requests() returned shared headers")
	}
	h.sc.Reset()
	if n := len(h.sc.Requests()); n != 0 {
		t.Fatalf("after Reset: %d requests", n)
	}
	h.expect("GET", "/api/v2/channels/", nil, "", 200)
	if reqs := h.sc.Requests(); len(reqs) != 1 || reqs[0].Path != "/api/v2/channels/" || len(reqs[0].KeyPrefixes) != 0 {
		t.Fatalf("after Reset and one call: %+v", reqs)
	}
}
