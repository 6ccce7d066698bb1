package standin

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

var playlistFields = []string{
	"id", "name", "duration", "tracks_num", "playlist_files_per_page", "is_default", "is_random",
	"on_air", "directory_name", "current_track_order", "server",
}

type playlistJSON struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	IsDefault bool   `json:"is_default"`
	IsRandom  bool   `json:"is_random"`
	Server    int    `json:"server"`
	PerPage   int    `json:"playlist_files_per_page"`
	Tracks    int    `json:"tracks_num"`
	Duration  int    `json:"duration"`
}

func TestPlaylistsList(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	key := withKey(testKey)

	raw := decode[[]json.RawMessage](t, h.expect("GET", "/api/v2/playlists/", key, "", 200))
	if len(raw) != 6 {
		t.Fatalf("%d playlists, want 6", len(raw))
	}
	for _, r := range raw {
		if keys := objectKeys(t, r); !slices.Equal(keys, playlistFields) {
			t.Errorf("fields %v", keys)
		}
	}
	for server, wantIDs := range map[string][]int{"1": {1, 2, 3}, "2": {4}, "9": {}} {
		list := decode[[]playlistJSON](t, h.expect("GET", "/api/v2/playlists/?server="+server, key, "", 200))
		var ids []int
		defaults := 0
		for _, p := range list {
			ids = append(ids, p.ID)
			if p.IsDefault {
				defaults++
				if p.Name != "All music" {
					t.Errorf("default playlist named %q", p.Name)
				}
			}
		}
		if !slices.Equal(ids, wantIDs) && len(ids)+len(wantIDs) > 0 {
			t.Errorf("server %s: ids %v, want %v", server, ids, wantIDs)
		}
		if len(wantIDs) > 0 && defaults != 1 {
			t.Errorf("server %s: %d default playlists, want exactly 1", server, defaults)
		}
	}
	h.expect("GET", "/api/v2/playlists/?server=x", key, "", 400)
}

func TestPlaylistCreateThenGet(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	key := withKey(testKey)
	b := h.expect("POST", "/api/v2/playlists/", key, `{"name": " Late night ", "is_random": true, "server": 1, "id": 77}`, 201)
	if keys := objectKeys(t, b); !slices.Equal(keys, playlistFields) {
		t.Errorf("fields %v", keys)
	}
	p := decode[playlistJSON](t, b)
	want := playlistJSON{ID: 7, Name: "Late night", IsRandom: true, Server: 1, PerPage: 1000}
	if p != want {
		t.Fatalf("created %+v, want %+v", p, want)
	}
	second := decode[playlistJSON](t, h.expect("POST", "/api/v2/playlists/", key, `{"name": "Weekend", "server": 2}`, 201))
	if second.ID != 8 || second.IsRandom {
		t.Errorf("second playlist %+v", second)
	}

	list := decode[[]playlistJSON](t, h.expect("GET", "/api/v2/playlists/?server=1", key, "", 200))
	if len(list) != 4 || list[3] != want {
		t.Errorf("list after POST %+v", list)
	}
	if got := decode[playlistJSON](t, h.expect("GET", "/api/v2/playlists/7/", key, "", 200)); got != want {
		t.Errorf("GET by id %+v", got)
	}
	wantDetail(t, h.expect("GET", "/api/v2/playlists/9/", key, "", 404), "Not found.")
}

func TestPlaylistValidation(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	key := withKey(testKey)
	for _, tc := range []struct {
		body string
		want map[string][]string
	}{
		{`{}`, map[string][]string{"name": {msgRequired}, "server": {msgRequired}}},
		{``, map[string][]string{"name": {msgRequired}, "server": {msgRequired}}},
		{`{"name": "", "server": 1}`, map[string][]string{"name": {msgBlank}}},
		{`{"name": "  ", "server": 1}`, map[string][]string{"name": {msgBlank}}},
		{`{"name": null, "server": 1}`, map[string][]string{"name": {msgNull}}},
		{`{"name": 5, "server": 1}`, map[string][]string{"name": {"Not a valid string."}}},
		{`{"name": "x", "server": "1"}`, map[string][]string{"server": {"Incorrect type. Expected pk value, received str."}}},
		{`{"name": "x", "server": 1.5}`, map[string][]string{"server": {"Incorrect type. Expected pk value, received float."}}},
		{`{"name": "x", "server": 5}`, map[string][]string{"server": {`Invalid pk "5" - object does not exist.`}}},
		{`{"name": "x", "server": 1, "is_random": "yes"}`, map[string][]string{"is_random": {"Must be a valid boolean."}}},
		{`[{"name": "x", "server": 1}]`, map[string][]string{"non_field_errors": {"Invalid data. Expected a dictionary, but got list."}}},
	} {
		t.Run(tc.body, func(t *testing.T) {
			got := decode[map[string][]string](t, h.expect("POST", "/api/v2/playlists/", key, tc.body, 400))
			if !mapsEqual(got, tc.want) {
				t.Errorf("errors %v, want %v", got, tc.want)
			}
		})
	}
	wantDetail(t, h.expect("POST", "/api/v2/playlists/", key, `{"name": `, 400), "JSON parse error - the body is not valid JSON.")
	// Nothing invalid was stored.
	if list := decode[[]json.RawMessage](t, h.expect("GET", "/api/v2/playlists/", key, "", 200)); len(list) != 6 {
		t.Errorf("%d playlists after invalid POSTs", len(list))
	}
}

func TestPlaylistsPublicRevision(t *testing.T) {
	h := start(t, Options{PlaylistsGETPublic: true}, false)
	h.expect("GET", "/api/v2/playlists/?server=1", nil, "", 200)
	h.expect("GET", "/api/v2/playlists/1/", http.Header{}, "", 200)
	// No key is configured, so a POST can never pass.
	h.expect("POST", "/api/v2/playlists/", withKey(testKey), `{"name": "x", "server": 1}`, 403)
}
