package standin

import (
	"net/http"
)

// playlist is an AutoDJ playlist, with every documented field in the documented order.
type playlist struct {
	ID                   int    `json:"id"`
	Name                 string `json:"name"`
	Duration             int64  `json:"duration"` // ms
	TracksNum            int    `json:"tracks_num"`
	PlaylistFilesPerPage int    `json:"playlist_files_per_page"`
	IsDefault            bool   `json:"is_default"`
	IsRandom             bool   `json:"is_random"`
	OnAir                bool   `json:"on_air"`
	DirectoryName        string `json:"directory_name"`
	CurrentTrackOrder    int    `json:"current_track_order"`
	Server               int    `json:"server"`
}

// filesPerPage is the admin UI's page size, the value the docs show.
const filesPerPage = 1000

// Seeded playlist IDs, referred to by the seeded schedule.
const (
	plAllMusicMain  = 1
	plEvening       = 2
	plMorningDrive  = 3
	plAllMusicOther = 4
	plAllMusicCity  = 5
	plAllMusicCoast = 6
)

func (st *store) seedPlaylists() error {
	seed := []playlist{
		// Every server has exactly one default "All music" playlist.
		{ID: plAllMusicMain, Name: "All music", Duration: 3_600_000, TracksNum: 18, IsDefault: true, IsRandom: true, Server: serverMain},
		{ID: plEvening, Name: "Evening", Duration: 1_800_000, TracksNum: 9, OnAir: true, CurrentTrackOrder: 4, Server: serverMain},
		// Synced from a folder; the negative track order is what the docs' example shows.
		{ID: plMorningDrive, Name: "Morning drive", Duration: 2_700_000, TracksNum: 12, DirectoryName: "morning-drive", CurrentTrackOrder: -9, Server: serverMain},
		{ID: plAllMusicOther, Name: "All music", Duration: 5_400_000, TracksNum: 27, IsDefault: true, IsRandom: true, OnAir: true, Server: serverOther},
		{ID: plAllMusicCity, Name: "All music", Duration: 2_400_000, TracksNum: 11, IsDefault: true, IsRandom: true, OnAir: true, Server: serverCity},
		{ID: plAllMusicCoast, Name: "All music", Duration: 1_200_000, TracksNum: 6, IsDefault: true, IsRandom: true, OnAir: true, Server: serverCoast},
	}
	for _, p := range seed {
		p.PlaylistFilesPerPage = filesPerPage
		if _, err := st.addPlaylist(p); err != nil {
			return err
		}
	}
	return nil
}

// addPlaylist stores p with the next ID (ignoring p.ID when it is zero) and returns it as stored.
func (st *store) addPlaylist(p playlist) (playlist, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if p.ID == 0 {
		p.ID = st.lastID.playlist + 1
	}
	b, err := encodeJSON(p)
	if err != nil {
		return playlist{}, err
	}
	st.lastID.playlist = p.ID
	st.playlists = append(st.playlists, entry{id: p.ID, server: p.Server, json: b})
	return p, nil
}

// getPlaylists answers GET /api/v2/playlists/: a plain array, filtered by ?server= when given.
func (s *Server) getPlaylists(r *http.Request) response {
	q, errs := parseQuery(r, false)
	if errs != nil {
		return errs.response()
	}
	b := s.store.list(make([]byte, 0, 1024), &s.store.playlists, byServer(q))
	return response{status: http.StatusOK, body: b}
}

// getPlaylist answers GET /api/v2/playlists/{id}/.
func (s *Server) getPlaylist(id int) response {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	for i := range s.store.playlists {
		if e := &s.store.playlists[i]; e.id == id {
			return response{status: http.StatusOK, body: e.json}
		}
	}
	return detail(http.StatusNotFound, "Not found.")
}

// postPlaylist answers POST /api/v2/playlists/ with body {"name", "is_random", "server"}, the
// only fields the docs name. Other fields, including read-only ones such as id, are ignored, as a
// DRF serializer ignores them.
func (s *Server) postPlaylist(w http.ResponseWriter, r *http.Request) response {
	f, bad := s.readForm(w, r)
	if bad != nil {
		return *bad
	}
	p := playlist{
		Name:                 f.text("name", true, false, ""),
		IsRandom:             f.boolean("is_random", false),
		PlaylistFilesPerPage: filesPerPage,
	}
	if srv := f.ref("server", false, serverExists); srv != nil {
		p.Server = *srv
	}
	if len(f.errs) > 0 {
		return f.errs.response()
	}
	p, err := s.store.addPlaylist(p)
	if err != nil {
		return internalError()
	}
	return created(p)
}
