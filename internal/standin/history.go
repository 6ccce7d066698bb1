package standin

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// historyRecord is one broadcast-history entry, with the documented fields in the order of the
// docs' example. Tags the file does not carry are JSON null (never the string "None" the docs'
// Python dump shows).
type historyRecord struct {
	ID              int     `json:"id"`
	TS              int64   `json:"ts"` // ms since the Unix epoch
	Metadata        string  `json:"metadata"`
	Title           *string `json:"title"`
	Author          *string `json:"author"`
	Album           *string `json:"album"`
	Length          int64   `json:"length"` // ms
	DJName          string  `json:"dj_name"`
	PlaylistTitle   string  `json:"playlist_title"`
	AllMusicID      *int    `json:"all_music_id"`
	JingleID        *int    `json:"jingle_id"`
	NListeners      int     `json:"n_listeners"`
	ImgFetched      bool    `json:"img_fetched"`
	ImgURL          string  `json:"img_url"`
	ImgMediumURL    string  `json:"img_medium_url"`
	ImgLargeURL     string  `json:"img_large_url"`
	Genre           *string `json:"genre"`
	Year            *string `json:"year"`
	Composer        *string `json:"composer"`
	Lyricist        *string `json:"lyricist"`
	AuthorOther     *string `json:"author_other"`
	Comment         *string `json:"comment"`
	Label           *string `json:"label"`
	Publisher       *string `json:"publisher"`
	ISRC            *string `json:"isrc"`
	PerformanceType *string `json:"performance_type"`

	server int // not part of the API object; used to index by server
}

// Seeded history sizes: about 120 entries for the main server, as the task asks, and a shorter
// history for the second one so a server filter visibly changes count.
const (
	historyMain  = 120
	historyOther = 24
	historySmall = 12 // each of stations 3 and 4
)

// originMarker stands for the panel's scheme://host inside pre-encoded history entries. Cover
// URLs are absolute on the real panel ("<panel base>/media/tracks/..."), so they must carry the
// host of the request; encoding/json writes the NUL as \u0000, which no other seeded string
// contains, and page substitutes the request's origin while it copies the entries.
const (
	originMarker  = "\x00"
	encodedMarker = `\u0000`
)

// historyIndex is the seeded history, newest first, pre-encoded, for all servers and per server.
type historyIndex struct {
	all      [][]byte
	byServer map[int][][]byte
}

// track is a fictional library entry the seeded history plays.
type track struct {
	author, title, album, genre, year string
	seconds                           int64
}

func catalogue() []track {
	return []track{
		{"Nobody Band", "Test Song", "Placeholder", "Rock", "2019", 201},
		{"The Fixtures", "Mock Turtle", "Stand-ins", "Indie", "2021", 187},
		{"Lorem Ipsum", "Dolor Sit Amet", "", "Ambient", "2016", 312},
		{"Null Pointer", "Dereference", "Segfault Sessions", "Electronic", "2022", 244},
		{"Example Orchestra", "Sample Rate", "Loopback", "Classical", "2010", 421},
		{"Quiet Hosts", "localhost", "", "Pop", "2023", 176},
		{"Latency", "Round Trip", "Handshake", "Jazz", "2018", 265},
		{"The Proxies", "Forwarded For", "Headers", "Rock", "2020", 199},
		{"Gate Keepers", "Two Keys", "Rotation", "Pop", "2024", 208},
		{"Cache Miss", "Cold Start", "", "Electronic", "2017", 233},
	}
}

// seedHistory lays out each server's history backwards from now: the newest entry started a
// minute ago and each older one ended when the next began.
func seedHistory(now time.Time) (historyIndex, error) {
	var recs []historyRecord
	tracks := catalogue()
	for _, srv := range []struct{ id, n int }{{serverMain, historyMain}, {serverOther, historyOther}, {serverCity, historySmall}, {serverCoast, historySmall}} {
		cursor := now.Add(-time.Minute).UnixMilli()
		for i := range srv.n {
			rec := seededRecord(tracks, srv.id, i)
			if i > 0 {
				cursor -= rec.Length
			}
			rec.TS = cursor
			recs = append(recs, rec)
		}
	}
	// IDs grow with time across both servers, as a single database table's would.
	slices.SortStableFunc(recs, func(a, b historyRecord) int { return cmpInt64(a.TS, b.TS) })
	idx := historyIndex{byServer: map[int][][]byte{}}
	servers := make([]int, len(recs))
	encoded := make([][]byte, len(recs))
	for i := range recs {
		recs[i].ID = 1000 + i
		b, err := encodeJSON(recs[i])
		if err != nil {
			return historyIndex{}, fmt.Errorf("standin: encoding seeded history: %w", err)
		}
		encoded[i], servers[i] = b, recs[i].server
	}
	for i := len(recs) - 1; i >= 0; i-- { // newest first
		idx.all = append(idx.all, encoded[i])
		idx.byServer[servers[i]] = append(idx.byServer[servers[i]], encoded[i])
	}
	return idx, nil
}

// seededRecord is the i-th newest entry of a server's history: mostly AutoDJ tracks, a jingle
// every tenth slot and a live DJ set (no library IDs) in the middle.
func seededRecord(tracks []track, server, i int) historyRecord {
	rec := historyRecord{
		DJName:        "AutoDJ",
		PlaylistTitle: "All music",
		NListeners:    (i*7+server*3)%23 + 1,
		server:        server,
	}
	switch {
	case i%10 == 9:
		n := i/10%3 + 1
		rec.Metadata = "Station ID " + strconv.Itoa(n)
		rec.Title = ptr(rec.Metadata)
		rec.Length = 8000 + int64(n)*2000
		rec.JingleID = ptr(n)
		return rec
	case i >= 40 && i < 46:
		rec.DJName, rec.PlaylistTitle = "DJ Nova", ""
		rec.Metadata = "DJ Nova - Live set part " + strconv.Itoa(46-i)
		rec.Title = ptr("Live set part " + strconv.Itoa(46-i))
		rec.Author = ptr("DJ Nova")
		rec.Length = 600_000
		return rec
	}
	n := (i*3 + server) % len(tracks)
	t, musicID := tracks[n], 40+n
	rec.Metadata = t.author + " - " + t.title
	rec.Title, rec.Author = ptr(t.title), ptr(t.author)
	if t.album != "" {
		rec.Album = ptr(t.album)
	}
	rec.Genre, rec.Year = ptr(t.genre), ptr(t.year)
	rec.Lyricist = ptr("") // present but empty, as in the docs' example
	rec.ISRC = ptr(fmt.Sprintf("ZZ-SC0-%s-%05d", t.year[2:], musicID))
	rec.Length = t.seconds * 1000
	if i%4 == 0 {
		rec.PlaylistTitle = "Evening"
	}
	rec.AllMusicID = ptr(musicID)
	rec.ImgFetched = musicID%3 == 0
	img := originMarker + "/media/tracks/trackImage" + strconv.Itoa(musicID)
	rec.ImgURL, rec.ImgMediumURL, rec.ImgLargeURL = img+".jpg", img+"_medium.jpg", img+"_large.jpg"
	return rec
}

// getHistory answers GET /api/v2/history/, paginated, newest first.
func (s *Server) getHistory(r *http.Request) response {
	q, errs := parseQuery(r, true)
	if errs != nil {
		return errs.response()
	}
	items := s.history.all
	if q.hasServer {
		items = s.history.byServer[q.server]
	}
	base := appendJSONString(nil, origin(r)) // as it must appear inside a JSON string
	return response{status: http.StatusOK, body: page(r, q, items, base[1:len(base)-1])}
}
