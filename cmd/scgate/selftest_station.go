package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// stepStationOwn: city-sync, scoped to station 3, reads its history and
// creates a playlist on it.
func stepStationOwn(ctx context.Context, t tour) error {
	r, err := call(ctx, demoAddrCity, "GET", t.base+"/api/v2/history/?limit=1&server=3", "")
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("read of station 3: status %d: %s", r.status, r.body)
	}
	r, err = call(ctx, demoAddrCity, "POST", t.base+"/api/v2/playlists/", `{"name":"City selftest","server":3}`)
	if err != nil {
		return err
	}
	var p struct{ Server int }
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &p) != nil || p.Server != 3 {
		return fmt.Errorf("create on station 3: status %d: %s", r.status, r.body)
	}
	return nil
}

// stepStationOther: every way city-sync tries to touch station 4 is
// refused with the documented code, and nothing reaches the stand-in.
func stepStationOther(ctx context.Context, t tour) error {
	before := len(t.standin.Requests())
	for _, c := range []struct{ method, path, body, code string }{
		{"GET", "/api/v2/history/?server=4", "", "station_forbidden"},
		{"GET", "/api/v2/history/?server=3&server=4", "", "station_malformed"},
		{"GET", "/api/v2/history/", "", "station_missing"},
		{"POST", "/api/v2/playlists/", `{"name":"x","server":4}`, "station_forbidden"},
		{"POST", "/api/v2/playlists/", `{"server":3,"server":4}`, "station_malformed"},
		{"POST", "/api/v2/playlists/", `{"server":"4"}`, "station_malformed"},
		{"POST", "/api/v2/playlists/?server=4", `{"server":3}`, "station_forbidden"},
		{"GET", "/api/v2/playlists/6/", "", "station_forbidden"},
	} {
		r, err := call(ctx, demoAddrCity, c.method, t.base+c.path, c.body)
		if err != nil {
			return err
		}
		if got := r.header.Get("Scgate-Error"); got != c.code {
			return fmt.Errorf("%s %s %s: status %d, Scgate-Error %q, want %s", c.method, c.path, c.body, r.status, got, c.code)
		}
	}
	if len(t.standin.Requests()) != before {
		return errors.New("a request for station 4 reached the stand-in")
	}
	return nil
}
