package standin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type envelope struct {
	Count    int               `json:"count"`
	Next     *string           `json:"next"`
	Previous *string           `json:"previous"`
	Results  []json.RawMessage `json:"results"`
}

var historyFields = []string{
	"id", "ts", "metadata", "title", "author", "album", "length", "dj_name", "playlist_title",
	"all_music_id", "jingle_id", "n_listeners", "img_fetched", "img_url", "img_medium_url",
	"img_large_url", "genre", "year", "composer", "lyricist", "author_other", "comment", "label",
	"publisher", "isrc", "performance_type",
}

var channelFields = []string{
	"id", "active", "server", "bitrate", "listeners", "s_type", "s_format", "ip_address", "port",
	"ssl_port", "mount_point", "public", "traf", "traf_month", "traffic", "autodj_enabled",
	"centovacast_compatible", "proxy_enabled", "proxy_status", "proxy_url_path", "ssl_proxy_enabled",
	"ssl_proxy_status", "ssl_proxy_url_path", "allow_auth_listeners_only", "queue_size", "burst_size",
	"listeners_current", "listeners_peak", "state", "links_html", "stream_url", "secure_stream_url",
	"admin_link", "youtube_stream_image", "youtube_stream_image_resolution", "fb_stream_image",
	"fb_stream_image_resolution", "vk_stream_image", "vk_stream_image_resolution",
	"telegram_stream_image", "telegram_stream_image_resolution",
}

func TestHistoryShape(t *testing.T) {
	h := start(t, Options{}, false)
	b := h.expect("GET", "/api/v2/history/?limit=1&offset=0&server=1", nil, "", 200)
	if strings.Contains(string(b), `"None"`) {
		t.Fatalf("body has the string None: %s", b)
	}
	env := decode[envelope](t, b)
	if env.Count != historyMain || len(env.Results) != 1 || env.Previous != nil || env.Next == nil {
		t.Fatalf("envelope %s", b)
	}
	if want := h.ts.URL + "/api/v2/history/?limit=1&offset=1&server=1"; *env.Next != want {
		t.Errorf("next %q, want %q", *env.Next, want)
	}
	if keys := objectKeys(t, env.Results[0]); !slices.Equal(keys, historyFields) {
		t.Errorf("fields %v, want %v", keys, historyFields)
	}
	now := decode[map[string]any](t, env.Results[0])
	if ts := now["ts"].(float64); int64(ts) != testNow.UnixMilli()-60_000 {
		t.Errorf("newest ts %v, want a minute before Now in ms", ts)
	}
	img, _ := now["img_url"].(string)
	if !strings.HasPrefix(img, h.ts.URL+"/media/tracks/trackImage") || !strings.HasSuffix(img, ".jpg") {
		t.Errorf("img_url %q is not an absolute cover URL on the panel", img)
	}

	all := decode[envelope](t, h.expect("GET", "/api/v2/history/?server=1&limit=1000", nil, "", 200))
	var prevTS float64
	var jingles, live int
	for i, raw := range all.Results {
		rec := decode[map[string]any](t, raw)
		if ts := rec["ts"].(float64); i > 0 && ts >= prevTS {
			t.Fatalf("entry %d is not older than the one before", i)
		} else {
			prevTS = ts
		}
		if rec["jingle_id"] != nil {
			jingles++
			if rec["all_music_id"] != nil {
				t.Errorf("jingle with a library id: %s", raw)
			}
		}
		if rec["dj_name"] != "AutoDJ" {
			live++
		}
	}
	if len(all.Results) != historyMain || jingles == 0 || live == 0 {
		t.Errorf("%d entries, %d jingles, %d live", len(all.Results), jingles, live)
	}
	if env := decode[envelope](t, h.expect("GET", "/api/v2/history/?server=2", nil, "", 200)); env.Count != historyOther {
		t.Errorf("server 2 count %d", env.Count)
	}
	if env := decode[envelope](t, h.expect("GET", "/api/v2/history/", nil, "", 200)); env.Count != historyMain+historyOther+2*historySmall || len(env.Results) != defaultLimit {
		t.Errorf("unfiltered: count %d, %d results", env.Count, len(env.Results))
	}
}

func TestChannelsShape(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	env := decode[envelope](t, h.expect("GET", "/api/v2/channels/?server=1", nil, "", 200))
	if env.Count != 2 || env.Next != nil || env.Previous != nil {
		t.Fatalf("envelope %+v", env)
	}
	for _, raw := range env.Results {
		if keys := objectKeys(t, raw); !slices.Equal(keys, channelFields) {
			t.Errorf("fields %v", keys)
		}
		ch := decode[map[string]any](t, raw)
		if _, ok := ch["bitrate"].(string); !ok {
			t.Errorf("bitrate is not a string: %s", raw)
		}
		if _, ok := ch["listeners"].(string); !ok {
			t.Errorf("listeners is not a string: %s", raw)
		}
	}

	body := `{"server": 2, "port": 8020, "ssl_port": 8463, "mount_point": "/hq", "bitrate": 320, "s_format": "flac"}`
	b := h.expect("POST", "/api/v2/channels/", withKey(testKey), body, 201)
	ch := decode[map[string]any](t, b)
	if ch["id"] != 6.0 || ch["bitrate"] != "320" || ch["server"] != 2.0 || ch["stream_url"] != "http://stream.example.test:8020/hq" {
		t.Errorf("created %s", b)
	}
	if keys := objectKeys(t, b); !slices.Equal(keys, channelFields) {
		t.Errorf("created fields %v", keys)
	}
	if env := decode[envelope](t, h.expect("GET", "/api/v2/channels/?server=2", nil, "", 200)); env.Count != 2 {
		t.Errorf("server 2 has %d channels after POST, want 2", env.Count)
	}

	b = h.expect("POST", "/api/v2/channels/", withKey(testKey), `{"server": 7, "port": 0, "mount_point": "live"}`, 400)
	errs := decode[map[string][]string](t, b)
	if len(errs["server"]) != 1 || len(errs["port"]) != 1 || len(errs["mount_point"]) != 1 {
		t.Errorf("validation errors %s", b)
	}
}

// TestPaginationLinks follows next from the first page to the end and checks every link.
func TestPaginationLinks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secure bool
		path   string
		query  string
		total  int
		limit  int
	}{
		{"history server 1 by 7", false, "/api/v2/history/", "server=1&limit=7", historyMain, 7},
		{"history all by default", true, "/api/v2/history/", "", historyMain + historyOther + 2*historySmall, defaultLimit},
		{"history server 2 by 5 over TLS", true, "/api/v2/history/", "limit=5&server=2", historyOther, 5},
		{"channels by 1", false, "/api/v2/channels/", "limit=1", 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, Options{}, tc.secure)
			scheme := "http://"
			if tc.secure {
				scheme = "https://"
			}
			base := scheme + h.ts.Listener.Addr().String() + tc.path
			target := tc.path + "?" + tc.query
			var pages, items int
			seen := map[float64]bool{}
			for target != "" {
				env := decode[envelope](t, h.expect("GET", target, nil, "", 200))
				pages++
				items += len(env.Results)
				if env.Count != tc.total {
					t.Fatalf("page %d: count %d, want %d", pages, env.Count, tc.total)
				}
				for _, raw := range env.Results {
					id := decode[map[string]any](t, raw)["id"].(float64)
					if seen[id] {
						t.Fatalf("id %v on two pages", id)
					}
					seen[id] = true
				}
				offset := (pages - 1) * tc.limit
				checkLink(t, env.Previous, pages > 1, base, tc.query, tc.limit, offset-tc.limit)
				checkLink(t, env.Next, items < tc.total, base, tc.query, tc.limit, offset+tc.limit)
				target = ""
				if env.Next != nil {
					target = *env.Next
				}
			}
			if items != tc.total {
				t.Fatalf("followed %d pages with %d items, want %d", pages, items, tc.total)
			}
			if want := (tc.total + tc.limit - 1) / tc.limit; pages != want {
				t.Errorf("%d pages, want %d", pages, want)
			}
		})
	}
}

// checkLink checks that a next/previous link is present exactly when wanted, absolute on the
// stand-in's own address, with the page's limit and offset (none for offset 0, as DRF does) and
// the request's other parameters.
func checkLink(t *testing.T, link *string, want bool, base, query string, limit, offset int) {
	t.Helper()
	if (link != nil) != want {
		t.Fatalf("link %v, want present=%v", link, want)
	}
	if link == nil {
		return
	}
	if !strings.HasPrefix(*link, base+"?") {
		t.Fatalf("link %q is not under %q", *link, base)
	}
	u, err := url.Parse(*link)
	if err != nil {
		t.Fatalf("link %q: %v", *link, err)
	}
	got := u.Query()
	orig, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("test query %q: %v", query, err)
	}
	if got.Get("server") != orig.Get("server") {
		t.Errorf("link %q lost server=%s", *link, orig.Get("server"))
	}
	if got.Get("limit") != strconv.Itoa(limit) {
		t.Errorf("link %q: limit, want %d", *link, limit)
	}
	wantOffset := ""
	if offset > 0 {
		wantOffset = strconv.Itoa(offset)
	}
	if _, has := got["offset"]; got.Get("offset") != wantOffset || (has && wantOffset == "") {
		t.Errorf("link %q: offset, want %q", *link, wantOffset)
	}
}

func TestPaginationHostAndOffsets(t *testing.T) {
	h := start(t, Options{}, false)
	// The example from the docs: the panel's own host and port end up in the links.
	hdr := http.Header{}
	resp, b := h.doHost("radio.example.test:1030", "/api/v2/history/?server=1&limit=1&offset=5", hdr)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	env := decode[envelope](t, b)
	if want := "http://radio.example.test:1030/api/v2/history/?limit=1&offset=6&server=1"; env.Next == nil || *env.Next != want {
		t.Errorf("next %v, want %s", env.Next, want)
	}
	if want := "http://radio.example.test:1030/api/v2/history/?limit=1&offset=4&server=1"; env.Previous == nil || *env.Previous != want {
		t.Errorf("previous %v, want %s", env.Previous, want)
	}
	// Past the end: no results, no next, a previous that steps back.
	env = decode[envelope](t, h.expect("GET", "/api/v2/history/?server=1&offset=500", nil, "", 200))
	if len(env.Results) != 0 || env.Next != nil || env.Previous == nil || !strings.Contains(*env.Previous, "offset=400") {
		t.Errorf("past the end: %+v", env)
	}
}

func TestPaginationBadParams(t *testing.T) {
	h := start(t, Options{}, false)
	for query, want := range map[string]map[string][]string{
		"limit=abc":          {"limit": {"A valid integer is required."}},
		"limit=":             {"limit": {"A valid integer is required."}},
		"limit=0":            {"limit": {"Ensure this value is greater than or equal to 1."}},
		"offset=-1":          {"offset": {"Ensure this value is greater than or equal to 0."}},
		"server=one":         {"server": {"A valid integer is required."}},
		"limit=x&offset=1.5": {"limit": {"A valid integer is required."}, "offset": {"A valid integer is required."}},
	} {
		for _, path := range []string{"/api/v2/history/", "/api/v2/channels/"} {
			got := decode[map[string][]string](t, h.expect("GET", path+"?"+query, nil, "", 400))
			if !mapsEqual(got, want) {
				t.Errorf("%s?%s: %v, want %v", path, query, got, want)
			}
		}
	}
	// Unknown servers are an empty list, not an error; a huge offset does not overflow.
	if env := decode[envelope](t, h.expect("GET", "/api/v2/history/?server=9", nil, "", 200)); env.Count != 0 || env.Next != nil {
		t.Errorf("server 9: %+v", env)
	}
	if env := decode[envelope](t, h.expect("GET", "/api/v2/history/?offset=9223372036854775807&limit=9223372036854775807", nil, "", 200)); env.Next != nil || len(env.Results) != 0 {
		t.Errorf("huge offset: %+v", env)
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
