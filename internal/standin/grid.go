package standin

import (
	"net/http"
	"slices"
	"time"
)

// gridEvent is one broadcast-schedule event, with the fields of the docs' example in its order.
// All stored events are concrete occurrences: the stand-in does not expand recurring events, so
// an event's periodicity is stored and echoed but has no effect.
type gridEvent struct {
	ID                         int    `json:"id"`
	Server                     int    `json:"server"`
	Name                       string `json:"name"`
	Periodicity                string `json:"periodicity"`
	CastType                   string `json:"cast_type"`
	StartDate                  string `json:"start_date"`
	StartTime                  string `json:"start_time"`
	FinishDate                 string `json:"finish_date"`
	FinishTime                 string `json:"finish_time"`
	WdMon                      bool   `json:"wd_mon"`
	WdTue                      bool   `json:"wd_tue"`
	WdWed                      bool   `json:"wd_wed"`
	WdThu                      bool   `json:"wd_thu"`
	WdFri                      bool   `json:"wd_fri"`
	WdSat                      bool   `json:"wd_sat"`
	WdSun                      bool   `json:"wd_sun"`
	Week1                      bool   `json:"week_1"`
	Week2                      bool   `json:"week_2"`
	Week3                      bool   `json:"week_3"`
	Week4                      bool   `json:"week_4"`
	Playlist                   *int   `json:"playlist"`
	PlaylistAfterRadioshow     *int   `json:"playlist_after_radioshow"`
	RotationAfterRadioshow     *int   `json:"rotation_after_radioshow"`
	DJ                         *int   `json:"dj"`
	Rotation                   *int   `json:"rotation"`
	BreakTrack                 bool   `json:"break_track"`
	StartPlaylistFromBeginning bool   `json:"start_playlist_from_beginning"`
	AllowJingles               bool   `json:"allow_jingles"`
	AllowSongRequests          bool   `json:"allow_song_requests"`
	AllowJinglesAfter          bool   `json:"allow_jingles_after"`
	AllowSongRequestsAfter     bool   `json:"allow_song_requests_after"`
	Color                      string `json:"color"`
	Color2                     string `json:"color2"`
	LocalTime                  string `json:"local_time"`
	Timezone                   string `json:"timezone"`
	ParentID                   *int   `json:"parent_id"`
	StartTS                    int64  `json:"start_ts"` // seconds
	StartTSUTCReadable         string `json:"start_ts_utc_readable"`
	EndTS                      int64  `json:"end_ts"` // seconds
}

const (
	dateLayout = "2006-01-02"
	timeLayout = "15:04:05"
)

// setTimes fills every date, time and timestamp field from the occurrence's bounds.
func (g *gridEvent) setTimes(start, end time.Time) {
	g.StartDate, g.StartTime = start.Format(dateLayout), start.Format(timeLayout)
	g.FinishDate, g.FinishTime = end.Format(dateLayout), end.Format(timeLayout)
	g.LocalTime = g.StartTime
	g.Timezone = start.Location().String()
	g.StartTS, g.EndTS = start.Unix(), end.Unix()
	g.StartTSUTCReadable = start.UTC().Format("2006-01-02T15:04:05Z")
}

// seedGrid lays out a week of one-time shows around now's day (UTC, so that no time-zone
// database is needed): from the day before to five days after.
func (st *store) seedGrid(now time.Time) error {
	type show struct {
		server, playlist, after int
		name, color             string
		hour, hours             int
	}
	shows := []show{
		{serverMain, plMorningDrive, plAllMusicMain, "Breakfast", "#3366cc", 7, 2},
		{serverMain, plEvening, plAllMusicMain, "Evening session", "#cc6633", 19, 2},
		{serverOther, plAllMusicOther, plAllMusicOther, "Night jazz", "#339966", 22, 1},
		{serverCity, plAllMusicCity, plAllMusicCity, "City drive", "#996633", 17, 2},
		{serverCoast, plAllMusicCoast, plAllMusicCoast, "Coast mornings", "#336699", 8, 1},
	}
	y, m, d := now.UTC().Date()
	day0 := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	for day := -1; day <= 5; day++ {
		for _, sh := range shows {
			start := day0.AddDate(0, 0, day).Add(time.Duration(sh.hour) * time.Hour)
			g := gridEvent{
				Server: sh.server, Name: sh.name, Periodicity: "onetime", CastType: "radioshow",
				Playlist: ptr(sh.playlist), PlaylistAfterRadioshow: ptr(sh.after),
				BreakTrack: true, StartPlaylistFromBeginning: true,
				AllowJingles: true, AllowJinglesAfter: true, AllowSongRequestsAfter: true,
				Color: sh.color, Color2: "#5588ee",
			}
			g.setTimes(start, start.Add(time.Duration(sh.hours)*time.Hour))
			if _, err := st.addGridEvent(g); err != nil {
				return err
			}
		}
	}
	return nil
}

// addGridEvent stores g with the next ID, keeping the schedule ordered by start.
func (st *store) addGridEvent(g gridEvent) (gridEvent, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	g.ID = st.lastID.grid + 1
	b, err := encodeJSON(g)
	if err != nil {
		return gridEvent{}, err
	}
	st.lastID.grid = g.ID
	e := entry{id: g.ID, server: g.Server, start: g.StartTS, end: g.EndTS, json: b}
	i, _ := slices.BinarySearchFunc(st.grid, e, func(a, b entry) int {
		if a.start != b.start {
			return cmpInt64(a.start, b.start)
		}
		return a.id - b.id
	})
	st.grid = slices.Insert(st.grid, i, e)
	return g, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// getGrid answers GET /api/v2/grid/: a plain array ordered by start, filtered by server and by
// overlap with [start_ts, end_ts) (seconds; either bound may be left out). utc is accepted and
// ignored: every stored timestamp is absolute already.
func (s *Server) getGrid(r *http.Request) response {
	q, errs := parseQuery(r, false)
	if errs == nil {
		errs = fieldErrors{}
	}
	from, hasFrom := intParam(q.values, "start_ts", 0, errs)
	to, hasTo := intParam(q.values, "end_ts", 0, errs)
	if len(errs) > 0 {
		return errs.response()
	}
	keep := byServer(q)
	b := s.store.list(make([]byte, 0, 4096), &s.store.grid, func(e *entry) bool {
		return keep(e) && (!hasFrom || e.end > int64(from)) && (!hasTo || e.start < int64(to))
	})
	return response{status: http.StatusOK, body: b}
}

// postGridEvent answers POST /api/v2/grid/. The docs give no schema, so this one is ours:
// server, name, start_date and start_time are required; finish_date and finish_time default to
// one hour after the start; timezone (an IANA name) defaults to UTC; everything else takes the
// defaults below. The answer is 201 with the stored event.
func (s *Server) postGridEvent(w http.ResponseWriter, r *http.Request) response {
	f, bad := s.readForm(w, r)
	if bad != nil {
		return *bad
	}
	g := gridEvent{
		Name:                       f.text("name", true, false, ""),
		Periodicity:                f.text("periodicity", false, false, "onetime"),
		CastType:                   f.text("cast_type", false, false, "radioshow"),
		BreakTrack:                 f.boolean("break_track", false),
		StartPlaylistFromBeginning: f.boolean("start_playlist_from_beginning", false),
		WdMon:                      f.boolean("wd_mon", false),
		WdTue:                      f.boolean("wd_tue", false),
		WdWed:                      f.boolean("wd_wed", false),
		WdThu:                      f.boolean("wd_thu", false),
		WdFri:                      f.boolean("wd_fri", false),
		WdSat:                      f.boolean("wd_sat", false),
		WdSun:                      f.boolean("wd_sun", false),
		Week1:                      f.boolean("week_1", false),
		Week2:                      f.boolean("week_2", false),
		Week3:                      f.boolean("week_3", false),
		Week4:                      f.boolean("week_4", false),
		Playlist:                   f.ref("playlist", true, s.store.playlistExists),
		PlaylistAfterRadioshow:     f.ref("playlist_after_radioshow", true, s.store.playlistExists),
		RotationAfterRadioshow:     f.nullableInt("rotation_after_radioshow"),
		DJ:                         f.nullableInt("dj"),
		Rotation:                   f.nullableInt("rotation"),
		AllowJingles:               f.boolean("allow_jingles", true),
		AllowSongRequests:          f.boolean("allow_song_requests", false),
		AllowJinglesAfter:          f.boolean("allow_jingles_after", true),
		AllowSongRequestsAfter:     f.boolean("allow_song_requests_after", false),
		Color:                      f.text("color", false, false, "#3366cc"),
		Color2:                     f.text("color2", false, false, "#5588ee"),
	}
	if srv := f.ref("server", false, serverExists); srv != nil {
		g.Server = *srv
	}
	start, end, ok := f.schedule()
	if len(f.errs) > 0 || !ok {
		return f.errs.response()
	}
	g.setTimes(start, end)
	g, err := s.store.addGridEvent(g)
	if err != nil {
		return internalError()
	}
	return created(g)
}

// schedule reads the start and finish of an event in its time zone. With no finish the show
// lasts an hour; a finish_time alone ends on the start date; a finish_date needs a finish_time.
func (f *form) schedule() (start, end time.Time, ok bool) {
	loc := time.UTC
	if tz := f.text("timezone", false, false, "UTC"); tz != "UTC" {
		l, err := time.LoadLocation(tz)
		if err != nil || tz == "" || tz == "Local" {
			f.errs.add("timezone", "Unknown time zone.")
			return start, end, false
		}
		loc = l
	}
	startDate, okDate := f.date("start_date", true, "")
	startTime, okTime := f.clock("start_time", true, "")
	if !okDate || !okTime {
		return start, end, false
	}
	start = at(startDate, startTime, loc)
	_, hasDate := f.raw["finish_date"]
	_, hasTime := f.raw["finish_time"]
	if !hasDate && !hasTime {
		return start, start.Add(time.Hour), true
	}
	finishDate, okDate := f.date("finish_date", false, startDate.Format(dateLayout))
	finishTime, okTime := f.clock("finish_time", true, "")
	if !okDate || !okTime {
		return start, end, false
	}
	end = at(finishDate, finishTime, loc)
	if !end.After(start) {
		f.errs.add("non_field_errors", "The finish must be after the start.")
		return start, end, false
	}
	return start, end, true
}

// at combines a date and a time of day in loc.
func at(date, clock time.Time, loc *time.Location) time.Time {
	return time.Date(date.Year(), date.Month(), date.Day(), clock.Hour(), clock.Minute(), clock.Second(), 0, loc)
}

// date reads a YYYY-MM-DD field (DRF's DateField format).
func (f *form) date(name string, required bool, def string) (time.Time, bool) {
	before := len(f.errs[name])
	v := f.text(name, required, false, def)
	if len(f.errs[name]) > before {
		return time.Time{}, false
	}
	d, err := time.Parse(dateLayout, v)
	if err != nil {
		f.errs.add(name, "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.")
		return time.Time{}, false
	}
	return d, true
}

// clock reads a time of day as DRF's TimeField does: hh:mm[:ss[.uuuuuu]].
func (f *form) clock(name string, required bool, def string) (time.Time, bool) {
	before := len(f.errs[name])
	v := f.text(name, required, false, def)
	if len(f.errs[name]) > before {
		return time.Time{}, false
	}
	for _, layout := range []string{"15:04:05", "15:04", "15:04:05.999999"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	f.errs.add(name, "Time has wrong format. Use one of these formats instead: hh:mm[:ss[.uuuuuu]].")
	return time.Time{}, false
}

// nullableInt reads an optional integer that may be null (a reference the stand-in does not
// model, such as a DJ or a rotation).
func (f *form) nullableInt(name string) *int {
	raw, ok := f.raw[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	n := f.integer(name, false, 0, 0, 1<<31-1)
	return &n
}
