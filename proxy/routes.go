package proxy

import "strings"

// routeOther labels every path outside the known API, so that metric label
// sets stay bounded whatever callers send.
const routeOther = "other"

// playlistActions are the per-playlist action routes of docs/design.md, The broadcaster API.
var playlistActions = map[string]string{
	"add_recording":      "/api/v2/playlists/{id}/add_recording/",
	"add_tracks":         "/api/v2/playlists/{id}/add_tracks/",
	"add_tracks_ordered": "/api/v2/playlists/{id}/add_tracks_ordered/",
	"clean_duplicates":   "/api/v2/playlists/{id}/clean_duplicates/",
	"copy":               "/api/v2/playlists/{id}/copy/",
	"excel":              "/api/v2/playlists/{id}/excel/",
	"order_tracks":       "/api/v2/playlists/{id}/order_tracks/",
	"shuffle_tracks":     "/api/v2/playlists/{id}/shuffle_tracks/",
	"start_broadcasting": "/api/v2/playlists/{id}/start_broadcasting/",
	"tracks":             "/api/v2/playlists/{playlist_pk}/tracks/",
}

var topLevel = map[string]string{
	"history":        "/api/v2/history/",
	"channels":       "/api/v2/channels/",
	"playlists":      "/api/v2/playlists/",
	"grid":           "/api/v2/grid/",
	"api-token-auth": "/api/v2/api-token-auth/",
	"authlisteners":  "/api/v2/authlisteners/",
}

// paginatedRoutes answer with the {count,next,previous,results} envelope whose
// absolute links must be rewritten (docs/design.md, The broadcaster API).
var paginatedRoutes = map[string]bool{
	"/api/v2/history/":       true,
	"/api/v2/channels/":      true,
	"/api/v2/authlisteners/": true,
}

// routeOf returns the endpoint template of an /api/v2 path, or "other". It
// returns only constant strings, so it allocates nothing.
func routeOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/api/v2/")
	if !ok || !strings.HasSuffix(rest, "/") {
		return routeOther
	}
	rest = rest[:len(rest)-1]
	first, rest, _ := strings.Cut(rest, "/")
	if rest == "" {
		if r, ok := topLevel[first]; ok {
			return r
		}
		return routeOther
	}
	if first != "playlists" {
		return routeOther
	}
	id, rest, _ := strings.Cut(rest, "/")
	if !isDigits(id) {
		return routeOther
	}
	if rest == "" {
		return "/api/v2/playlists/{id}/"
	}
	action, rest, _ := strings.Cut(rest, "/")
	if rest == "" {
		if r, ok := playlistActions[action]; ok {
			return r
		}
		return routeOther
	}
	if action != "tracks" {
		return routeOther
	}
	switch {
	case rest == "bulk_delete":
		return "/api/v2/playlists/{playlist_pk}/tracks/bulk_delete/"
	case rest == "bulk_move":
		return "/api/v2/playlists/{playlist_pk}/tracks/bulk_move/"
	case isDigits(rest):
		return "/api/v2/playlists/{playlist_pk}/tracks/{id}/"
	}
	return routeOther
}

func isDigits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
