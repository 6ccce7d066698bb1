package standin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkPlaylistsGET measures the handler alone on the call scgate's benchmarks hammer, with
// the request log bounded as a long benchmark run should bound it.
func BenchmarkPlaylistsGET(b *testing.B) {
	sc, err := New(Options{Keys: []string{testKey}, MaxRecorded: 1024})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/api/v2/playlists/?server=1", nil)
	r.Header.Set(KeyHeader, testKey)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		sc.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkHistoryGET measures a full history page, the largest answer the stand-in gives.
func BenchmarkHistoryGET(b *testing.B) {
	sc, err := New(Options{MaxRecorded: 1024})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/api/v2/history/?server=1", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		sc.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// FuzzStandinServeHTTP feeds arbitrary paths, queries, keys and bodies to the stand-in broadcaster
// (not the gateway: proxy's FuzzGatewayForwardsWhatWasMatched and friends fuzz that): whatever comes
// in, the answer is JSON with a status the stand-in is meant to give, and no key is recorded.
func FuzzStandinServeHTTP(f *testing.F) {
	f.Add("GET", "/api/v2/history/", "limit=1&offset=0&server=1", "", "")
	f.Add("GET", "/api/v2/playlists/12/", "", testKey, "")
	f.Add("POST", "/api/v2/playlists/", "", testKey, `{"name": "x", "server": 1}`)
	f.Add("POST", "/api/v2/grid/", "", testKey, `{"server": 1, "name": "x", "start_date": "2026-01-01", "start_time": "10:00"}`)
	f.Add("POST", "/api/v2/channels/", "", testKey, `{"server": 1, "port": 1, "mount_point": "/a", "bitrate": 1e400}`)
	f.Add("GET", "/api/v2/grid/", "start_ts=1&end_ts=99999999999&server=1", "", "")
	f.Add("DELETE", "/api/v2/../v2/history/", "limit=%zz", "x", "[")
	sc, err := New(Options{Keys: []string{testKey}, MaxRecorded: 16})
	if err != nil {
		f.Fatal(err)
	}
	allowed := map[int]bool{200: true, 201: true, 400: true, 403: true, 404: true, 405: true, 413: true, 415: true}
	f.Fuzz(func(t *testing.T, method, path, query, key, body string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n") || !strings.HasPrefix(path, "/") {
			t.Skip()
		}
		r := httptest.NewRequest(http.MethodGet, "/", strings.NewReader(body))
		r.Method, r.URL.Path, r.URL.RawQuery = method, path, query
		if key != "" {
			r.Header["sc-api-key"] = []string{key}
		}
		sc.Reset()
		w := httptest.NewRecorder()
		sc.ServeHTTP(w, r)
		if !allowed[w.Code] {
			t.Fatalf("status %d for %s %s?%s", w.Code, method, path, query)
		}
		if method != http.MethodHead && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("body is not JSON: %q", w.Body.Bytes())
		}
		reqs := sc.Requests()
		if len(reqs) != 1 || reqs[0].Status != w.Code {
			t.Fatalf("recorded %+v", reqs)
		}
		if len(key) > 16 && (strings.Contains(strings.Join(reqs[0].KeyPrefixes, " "), key) ||
			strings.Contains(strings.Join(reqs[0].Header.Values("sc-api-key"), " "), key)) {
			t.Fatalf("key %q recorded in full", key)
		}
	})
}
