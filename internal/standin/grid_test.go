package standin

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var gridFields = []string{
	"id", "server", "name", "periodicity", "cast_type", "start_date", "start_time", "finish_date",
	"finish_time", "wd_mon", "wd_tue", "wd_wed", "wd_thu", "wd_fri", "wd_sat", "wd_sun", "week_1",
	"week_2", "week_3", "week_4", "playlist", "playlist_after_radioshow", "rotation_after_radioshow",
	"dj", "rotation", "break_track", "start_playlist_from_beginning", "allow_jingles",
	"allow_song_requests", "allow_jingles_after", "allow_song_requests_after", "color", "color2",
	"local_time", "timezone", "parent_id", "start_ts", "start_ts_utc_readable", "end_ts",
}

type eventJSON struct {
	ID         int    `json:"id"`
	Server     int    `json:"server"`
	Name       string `json:"name"`
	StartDate  string `json:"start_date"`
	StartTime  string `json:"start_time"`
	FinishDate string `json:"finish_date"`
	FinishTime string `json:"finish_time"`
	Playlist   *int   `json:"playlist"`
	Timezone   string `json:"timezone"`
	StartTS    int64  `json:"start_ts"`
	Readable   string `json:"start_ts_utc_readable"`
	EndTS      int64  `json:"end_ts"`
}

func TestGridList(t *testing.T) {
	h := start(t, Options{}, false)
	all := decode[[]eventJSON](t, h.expect("GET", "/api/v2/grid/", nil, "", 200))
	if len(all) != 35 {
		t.Fatalf("%d events, want 35 (5 shows a day, one per station but two on station 1, for 7 days)", len(all))
	}
	if !slices.IsSortedFunc(all, func(a, b eventJSON) int { return cmpInt64(a.StartTS, b.StartTS) }) {
		t.Error("events are not ordered by start")
	}
	first := all[0]
	if first.StartDate != "2026-01-14" || first.StartTime != "07:00:00" || first.Readable != "2026-01-14T07:00:00Z" ||
		first.EndTS-first.StartTS != 7200 || first.Timezone != "UTC" {
		t.Errorf("first event %+v", first)
	}
	raw := h.expect("GET", "/api/v2/grid/?server=2", nil, "", 200)
	for _, ev := range decode[[]eventJSON](t, raw) {
		if ev.Server != 2 {
			t.Errorf("server filter let through %+v", ev)
		}
	}

	// Today's shows on server 1: the window covers the end of Breakfast (07-09) and all of the
	// Evening session (19-21), in seconds.
	from := time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC).Unix()
	to := time.Date(2026, 1, 15, 23, 0, 0, 0, time.UTC).Unix()
	window := decode[[]eventJSON](t, h.expect("GET", fmt.Sprintf("/api/v2/grid/?server=1&start_ts=%d&end_ts=%d&utc=1", from, to), nil, "", 200))
	var names []string
	for _, ev := range window {
		names = append(names, ev.Name)
	}
	if !slices.Equal(names, []string{"Breakfast", "Evening session"}) {
		t.Errorf("window has %v", names)
	}
	got := decode[map[string][]string](t, h.expect("GET", "/api/v2/grid/?start_ts=soon", nil, "", 400))
	if len(got["start_ts"]) != 1 {
		t.Errorf("bad start_ts: %v", got)
	}
}

func TestGridCreate(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	key := withKey(testKey)
	b := h.expect("POST", "/api/v2/grid/", key,
		`{"server": 1, "name": "Special", "start_date": "2026-01-15", "start_time": "12:30", "finish_time": "13:45:00", "playlist": 2}`, 201)
	if keys := objectKeys(t, b); !slices.Equal(keys, gridFields) {
		t.Errorf("fields %v", keys)
	}
	ev := decode[eventJSON](t, b)
	start := time.Date(2026, 1, 15, 12, 30, 0, 0, time.UTC).Unix()
	if ev.ID != 36 || ev.StartTime != "12:30:00" || ev.FinishDate != "2026-01-15" || ev.StartTS != start ||
		ev.EndTS != start+75*60 || ev.Playlist == nil || *ev.Playlist != 2 {
		t.Errorf("created %+v", ev)
	}
	at := fmt.Sprintf("/api/v2/grid/?server=1&start_ts=%d&end_ts=%d", start, start+60)
	if list := decode[[]eventJSON](t, h.expect("GET", at, nil, "", 200)); len(list) != 1 || list[0].ID != 36 {
		t.Errorf("GET after POST: %+v", list)
	}

	// Default length: one hour.
	ev = decode[eventJSON](t, h.expect("POST", "/api/v2/grid/", key, `{"server": 2, "name": "Short", "start_date": "2026-02-01", "start_time": "23:30:00"}`, 201))
	if ev.EndTS-ev.StartTS != 3600 || ev.FinishDate != "2026-02-02" || ev.FinishTime != "00:30:00" {
		t.Errorf("default finish %+v", ev)
	}

	for body, field := range map[string]string{
		`{"server": 1, "name": "x", "start_date": "15/01/2026", "start_time": "10:00"}`:                             "start_date",
		`{"server": 1, "name": "x", "start_date": "2026-01-15", "start_time": "25:00"}`:                             "start_time",
		`{"server": 1, "name": "x", "start_date": "2026-01-15"}`:                                                    "start_time",
		`{"server": 1, "name": "x", "start_date": "2026-01-15", "start_time": "10:00", "finish_time": "09:00"}`:     "non_field_errors",
		`{"server": 1, "name": "x", "start_date": "2026-01-15", "start_time": "10:00", "playlist": 99}`:             "playlist",
		`{"server": 1, "name": "x", "start_date": "2026-01-15", "start_time": "10:00", "timezone": "Mars/Olympus"}`: "timezone",
		`{"name": "x", "start_date": "2026-01-15", "start_time": "10:00"}`:                                          "server",
	} {
		got := decode[map[string][]string](t, h.expect("POST", "/api/v2/grid/", key, body, 400))
		if len(got[field]) == 0 {
			t.Errorf("%s: errors %v, want one for %s", body, got, field)
		}
	}
}
