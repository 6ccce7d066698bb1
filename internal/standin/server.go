package standin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultMaxBodyBytes is the request-body limit used when Options.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// ErrInvalidOptions is wrapped by every error New returns, so callers can tell a configuration
// mistake from anything else with errors.Is.
var ErrInvalidOptions = errors.New("standin: invalid options")

// Options configures a stand-in. The zero value is usable: no key is valid (every protected call
// answers 403), playlists GET needs a key, the clock is time.Now, bodies are limited to 1 MiB and
// every request is recorded.
type Options struct {
	// Keys are the SC-API-KEY values the stand-in accepts; SetKeys replaces them later. An empty
	// string, or one containing whitespace or control characters, is an error: no request could
	// carry it, so it can only be a mistake.
	Keys []string

	// PlaylistsGETPublic selects which revision of the vendor's docs to mimic for GET on
	// /api/v2/playlists/ and /api/v2/playlists/{id}/. False (the default, the current page): a
	// key is required. True (an older revision): the GETs are public. POST always needs a key.
	PlaylistsGETPublic bool

	// Now is the clock the seed data is laid out from (history "ts" values end at Now, schedule
	// events sit around Now's day). Nil means time.Now. It is read once, in New.
	Now func() time.Time

	// MaxBodyBytes limits a POST body; past it the answer is 413. Zero means
	// DefaultMaxBodyBytes; negative is an error.
	MaxBodyBytes int64

	// Forbidden lists routes that a valid key may not use, as a panel whose keys carry
	// permissions refuses them: 403 {"detail": "You do not have permission to perform this
	// action."} (Django REST Framework's PermissionDenied), while the same key keeps working on
	// every other route. A rule applies where a key is checked (a protected call); the key is
	// checked first, so a wrong key still gets "Invalid API key.". SetForbidden replaces them.
	Forbidden []Forbidden

	// MaxRecorded bounds the request log. Zero keeps every request (what tests want); N > 0 keeps
	// only the newest N, which long-running uses (the demo, benchmarks) should set so the log
	// cannot grow without bound. Negative is an error.
	MaxRecorded int
}

// Server is the stand-in broadcaster API, an http.Handler. It is safe for concurrent use.
type Server struct {
	keys          atomic.Pointer[keySet] // swapped whole by SetKeys; requests never lock for it
	forbidden     atomic.Pointer[forbidSet]
	playlistsOpen bool
	maxBody       int64
	history       historyIndex // immutable after New
	store         *store
	log           *recorder
}

// New validates opts and returns a stand-in seeded with the demo data.
func New(opts Options) (*Server, error) {
	for i, k := range opts.Keys {
		if err := checkKeyValue(k); err != nil {
			return nil, fmt.Errorf("%w: Keys[%d] %v", ErrInvalidOptions, i, err)
		}
	}
	if opts.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("%w: MaxBodyBytes is negative (%d); use 0 for the default", ErrInvalidOptions, opts.MaxBodyBytes)
	}
	if opts.MaxRecorded < 0 {
		return nil, fmt.Errorf("%w: MaxRecorded is negative (%d); use 0 to keep every request", ErrInvalidOptions, opts.MaxRecorded)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	seedTime := now()

	hist, err := seedHistory(seedTime)
	if err != nil {
		return nil, err
	}
	st, err := seedStore(seedTime)
	if err != nil {
		return nil, err
	}
	s := &Server{
		playlistsOpen: opts.PlaylistsGETPublic,
		maxBody:       opts.MaxBodyBytes,
		history:       hist,
		store:         st,
		log:           &recorder{max: opts.MaxRecorded},
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	s.keys.Store(newKeySet(opts.Keys))
	s.forbidden.Store(newForbidSet(opts.Forbidden))
	return s, nil
}

// SetKeys replaces the accepted keys, as a broadcaster does when it revokes a key or issues a new
// one in its panel. It is safe to call while requests are served: each request sees either the old
// or the new set. Values New would reject are skipped, since no request can carry them.
func (s *Server) SetKeys(keys []string) {
	valid := make([]string, 0, len(keys))
	for _, k := range keys {
		if checkKeyValue(k) == nil {
			valid = append(valid, k)
		}
	}
	s.keys.Store(newKeySet(valid))
}

// SetForbidden replaces the routes forbidden to valid keys (Options.Forbidden), as a broadcaster
// does when it changes a key's permissions in its panel. It is safe to call while requests are
// served.
func (s *Server) SetForbidden(rules []Forbidden) { s.forbidden.Store(newForbidSet(rules)) }

// Requests returns a copy of every request received so far (or the newest Options.MaxRecorded
// of them), oldest first.
func (s *Server) Requests() []Request { return s.log.snapshot() }

// Reset forgets the recorded requests. The API's state (created playlists and so on) is kept.
func (s *Server) Reset() { s.log.reset() }

// ServeHTTP answers one API call. The request is recorded before the response is written, so a
// client that has read a response always finds its request in Requests().
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	keys := keyValues(r.Header)
	rec := newRequest(r, keys)
	resp := s.serve(w, r, keys, &rec)
	rec.Status = resp.status
	s.log.add(rec)
	resp.write(w, r.Method == http.MethodHead)
}

// serve routes r: 404 for an unknown path, then the endpoint's own checks.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, keys []string, rec *Request) response {
	ep, id, ok := match(r.URL.Path)
	if !ok {
		return detail(http.StatusNotFound, "Not found.")
	}
	resp := s.endpoint(w, r, ep, id, keys, rec)
	// DRF sends Allow on every response of a view, not only on 405.
	resp.allow = ep.allow()
	return resp
}

// endpoint answers a request on a known path: 405 for a method the path does not have, 403 for a
// missing or wrong key where one is needed, then the handler. DRF would check a protected view's
// key before the method; answering 405 first tells a caller the clearer of the two mistakes.
func (s *Server) endpoint(w http.ResponseWriter, r *http.Request, ep endpoint, id int, keys []string, rec *Request) response {
	var isPost bool
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
	case r.Method == http.MethodPost && ep.hasPost():
		isPost = true
	default:
		return detail(http.StatusMethodNotAllowed, "Method "+strconv.Quote(r.Method)+" not allowed.")
	}
	if isPost || s.getNeedsKey(ep) {
		if resp, ok := s.authorise(keys); !ok {
			rec.Accepted = false
			return resp
		}
		if s.forbidden.Load().forbids(keys[0], r.Method, r.URL.Path) {
			// The key was accepted; this route is not among its permissions.
			return detail(http.StatusForbidden, "You do not have permission to perform this action.")
		}
	}
	switch {
	case ep == epHistory:
		return s.getHistory(r)
	case ep == epChannels && isPost:
		return s.postChannel(w, r)
	case ep == epChannels:
		return s.getChannels(r)
	case ep == epPlaylists && isPost:
		return s.postPlaylist(w, r)
	case ep == epPlaylists:
		return s.getPlaylists(r)
	case ep == epPlaylist:
		return s.getPlaylist(id)
	case ep == epGrid && isPost:
		return s.postGridEvent(w, r)
	default:
		return s.getGrid(r)
	}
}

func (s *Server) getNeedsKey(ep endpoint) bool {
	return (ep == epPlaylists || ep == epPlaylist) && !s.playlistsOpen
}

// authorise applies the key rules to every SC-API-KEY value the request carried.
func (s *Server) authorise(keys []string) (response, bool) {
	switch {
	case len(keys) == 0:
		return detail(http.StatusForbidden, "Authentication credentials were not provided."), false
	case len(keys) > 1:
		// Which copy a real server would read is unknowable; refusing is the answer that cannot
		// make a gateway bug look like success.
		return detail(http.StatusForbidden, "Invalid API key."), false
	case !s.keys.Load().valid(keys[0]):
		return detail(http.StatusForbidden, "Invalid API key."), false
	}
	return response{}, true
}

// endpoint names one route of the API.
type endpoint int

const (
	epHistory endpoint = iota
	epChannels
	epPlaylists
	epPlaylist // /api/v2/playlists/{id}/
	epGrid
)

func (ep endpoint) hasPost() bool { return ep == epChannels || ep == epPlaylists || ep == epGrid }

func (ep endpoint) allow() string {
	if ep.hasPost() {
		return "GET, POST, HEAD"
	}
	return "GET, HEAD"
}

const playlistsPath = "/api/v2/playlists/"

// match maps a request path to its endpoint and, for a playlist, the ID in it. The match is
// exact: no cleaning, no missing trailing slash, no action or track sub-routes.
func match(path string) (endpoint, int, bool) {
	switch path {
	case "/api/v2/history/":
		return epHistory, 0, true
	case "/api/v2/channels/":
		return epChannels, 0, true
	case playlistsPath:
		return epPlaylists, 0, true
	case "/api/v2/grid/":
		return epGrid, 0, true
	}
	rest, ok := strings.CutPrefix(path, playlistsPath)
	if !ok {
		return 0, 0, false
	}
	digits, ok := strings.CutSuffix(rest, "/")
	if !ok || digits == "" || len(digits) > 9 || strings.Trim(digits, "0123456789") != "" {
		return 0, 0, false
	}
	id, err := strconv.Atoi(digits)
	if err != nil {
		return 0, 0, false
	}
	return epPlaylist, id, true
}

// response is what an endpoint produces; ServeHTTP records its status and then writes it.
type response struct {
	status int
	body   []byte
	allow  string
}

func (resp response) write(w http.ResponseWriter, head bool) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	if resp.allow != "" {
		h.Set("Allow", resp.allow)
	}
	w.WriteHeader(resp.status)
	if !head {
		// A write error means the client went away; there is nobody left to tell.
		_, _ = w.Write(resp.body)
	}
}

// detail is DRF's error body, {"detail": msg}.
func detail(status int, msg string) response {
	b := make([]byte, 0, len(msg)+16)
	b = append(b, `{"detail":`...)
	b = appendJSONString(b, msg)
	b = append(b, '}')
	return response{status: status, body: b}
}
