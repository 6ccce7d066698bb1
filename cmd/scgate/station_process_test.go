package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scgate/scgate/internal/standin"
)

// TestStationScopingThroughTheBinary: the built binary, configured with
// [policy.stations], lets a caller scoped to station 3 read and create on
// station 3 of the stand-in, refuses station 4 before the stand-in, and
// counts both in /metrics by result only.
func TestStationScopingThroughTheBinary(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{sigKey1}, MaxRecorded: 100})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	cfg := writeProcessConfig(t, up.URL,
		"[policy.sets]\ncity = [\"GET /api/v2/**\", \"POST /api/v2/playlists/\"]\n[policy.stations]\ncity = [3]\n[policy.callers]\n\"svc\" = \"city\"\n",
		"[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \""+sigKey1+"\"\n")
	p := startScgate(t, buildScgate(t), cfg)

	send := func(method, path, body string) (int, string, string) {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, p.base+path, r)
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Scgate-Error"), string(b)
	}
	if code, _, body := send("GET", "/api/v2/history/?limit=1&server=3", ""); code != 200 || !strings.Contains(body, `"count":12`) {
		t.Fatalf("read of station 3: %d %s", code, body)
	}
	if code, _, body := send("POST", "/api/v2/playlists/", `{"name":"Binary","server":3}`); code != 201 || !strings.Contains(body, `"server":3`) {
		t.Fatalf("create on station 3: %d %s", code, body)
	}
	before := len(si.Requests())
	for _, c := range []struct{ method, path, body, code string }{
		{"GET", "/api/v2/history/?server=4", "", "station_forbidden"},
		{"GET", "/api/v2/history/?server=3&server=4", "", "station_malformed"},
		{"POST", "/api/v2/playlists/", `{"name":"x","server":4}`, "station_forbidden"},
		{"POST", "/api/v2/playlists/", `{"server":3,"server":4}`, "station_malformed"},
		{"GET", "/api/v2/playlists/6/", "", "station_forbidden"},
	} {
		if _, got, body := send(c.method, c.path, c.body); got != c.code {
			t.Errorf("%s %s %s: Scgate-Error %q, want %s: %s", c.method, c.path, c.body, got, c.code, body)
		}
	}
	if len(si.Requests()) != before {
		t.Fatal("a request for station 4 reached the stand-in")
	}
	_, metrics := get(t, http.DefaultClient, p.admin+"/metrics")
	for _, want := range []string{
		`scgate_station_checks_total{result="allowed"} 2`,
		`scgate_station_checks_total{result="forbidden"} 2`,
		`scgate_station_checks_total{result="malformed"} 2`,
		`scgate_station_checks_total{result="route"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
