package standin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Keys in the documented shape: 8 alphanumerics, a dot, 32 alphanumerics.
const (
	testKey  = "Ab3dEf7h.Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6"
	otherKey = "Zz9yXx8w.P0o9I8u7Y6t5R4e3W2q1A2s3D4f5G6h7"
)

// testNow is the injected clock: the seed data is laid out from it.
var testNow = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

type harness struct {
	t  *testing.T
	sc *Server
	ts *httptest.Server
}

// start runs a stand-in behind a real socket (TLS when secure) for the duration of the test.
func start(t *testing.T, opts Options, secure bool) *harness {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	sc, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var ts *httptest.Server
	if secure {
		ts = httptest.NewTLSServer(sc)
	} else {
		ts = httptest.NewServer(sc)
	}
	t.Cleanup(ts.Close)
	return &harness{t: t, sc: sc, ts: ts}
}

// withKey returns headers carrying key (none when key is empty).
func withKey(key string) http.Header {
	h := http.Header{}
	if key != "" {
		h.Set(KeyHeader, key)
	}
	return h
}

// do sends one request. hdr is copied as is, so non-canonical header names reach the wire; a
// target starting with "http" is used whole (a followed link), anything else is a path.
func (h *harness) do(method, target string, hdr http.Header, body string) (*http.Response, []byte) {
	h.t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = h.ts.URL + target
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, target, rd)
	if err != nil {
		h.t.Fatalf("NewRequest: %v", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading body: %v", err)
	}
	return resp, b
}

// doHost sends a GET with the given Host header, as a gateway forwarding to "the panel" would.
func (h *harness) doHost(host, path string, hdr http.Header) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), "GET", h.ts.URL+path, nil)
	if err != nil {
		h.t.Fatalf("NewRequest: %v", err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading body: %v", err)
	}
	return resp, b
}

// try sends a body-less request without failing the test, for use off the test's goroutine.
func (h *harness) try(method, path string, hdr http.Header) (int, error) {
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.ts.URL+path, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// expect checks the status and the JSON content type, and returns the body.
func (h *harness) expect(method, target string, hdr http.Header, body string, status int) []byte {
	h.t.Helper()
	resp, b := h.do(method, target, hdr, body)
	if resp.StatusCode != status {
		h.t.Fatalf("%s %s: status %d, want %d; body %s", method, target, resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		h.t.Fatalf("%s %s: Content-Type %q", method, target, ct)
	}
	if method != http.MethodHead && !json.Valid(b) {
		h.t.Fatalf("%s %s: body is not JSON: %q", method, target, b)
	}
	return b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// objectKeys lists the keys of a JSON object in the order they appear.
func objectKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading key: %v", err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("reading value: %v", err)
		}
	}
	return keys
}

func wantDetail(t *testing.T, b []byte, want string) {
	t.Helper()
	got := decode[map[string]string](t, b)
	if len(got) != 1 || got["detail"] != want {
		t.Fatalf("body %s, want {\"detail\": %q}", b, want)
	}
}

func TestNewValidates(t *testing.T) {
	for name, opts := range map[string]Options{
		"empty key":           {Keys: []string{testKey, ""}},
		"key with space":      {Keys: []string{"Ab3dEf7h.abc def"}},
		"key with newline":    {Keys: []string{testKey + "\n"}},
		"negative body limit": {MaxBodyBytes: -1},
		"negative log size":   {MaxRecorded: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(opts); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("New: %v, want ErrInvalidOptions", err)
			}
		})
	}
	if _, err := New(Options{}); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
}

func TestRouting(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	key := withKey(testKey)
	for _, tc := range []struct {
		method, path string
		status       int
		detail       string
		allow        string
	}{
		{"GET", "/api/v2/nothing/", 404, "Not found.", ""},
		{"GET", "/api/v2/history", 404, "Not found.", ""}, // no trailing slash
		{"GET", "/api/v2//history/", 404, "Not found.", ""},
		{"GET", "/api/v2/playlists/abc/", 404, "Not found.", ""},
		{"GET", "/api/v2/playlists/1/shuffle_tracks/", 404, "Not found.", ""},
		{"GET", "/api/v2/playlists/999/", 404, "Not found.", "GET, HEAD"},
		{"DELETE", "/api/v2/playlists/", 405, `Method "DELETE" not allowed.`, "GET, POST, HEAD"},
		{"PUT", "/api/v2/history/", 405, `Method "PUT" not allowed.`, "GET, HEAD"},
		{"POST", "/api/v2/history/", 405, `Method "POST" not allowed.`, "GET, HEAD"},
		{"POST", "/api/v2/playlists/1/", 405, `Method "POST" not allowed.`, "GET, HEAD"},
		{"OPTIONS", "/api/v2/grid/", 405, `Method "OPTIONS" not allowed.`, "GET, POST, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, b := h.do(tc.method, tc.path, key, "")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			wantDetail(t, b, tc.detail)
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		resp, b := h.do("HEAD", "/api/v2/history/", nil, "")
		if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength <= 0 {
			t.Fatalf("HEAD: status %d, %d body bytes, Content-Length %d", resp.StatusCode, len(b), resp.ContentLength)
		}
	})
}

func TestBodyLimits(t *testing.T) {
	small := start(t, Options{Keys: []string{testKey}, MaxBodyBytes: 64}, false)
	body := `{"name": "` + strings.Repeat("x", 100) + `", "server": 1}`
	b := small.expect("POST", "/api/v2/playlists/", withKey(testKey), body, 413)
	wantDetail(t, b, "Request body is larger than 64 bytes.")
	// The key is checked before the body is read, as DRF checks permissions first.
	small.expect("POST", "/api/v2/playlists/", nil, body, 403)

	def := start(t, Options{Keys: []string{testKey}}, false)
	huge := `{"name": "` + strings.Repeat("x", DefaultMaxBodyBytes) + `", "server": 1}`
	def.expect("POST", "/api/v2/playlists/", withKey(testKey), huge, 413)
	def.expect("POST", "/api/v2/playlists/", withKey(testKey), `{"name": "fits", "server": 1}`, 201)
}

func TestContentTypes(t *testing.T) {
	h := start(t, Options{Keys: []string{testKey}}, false)
	hdr := withKey(testKey)
	hdr.Set("Content-Type", "text/plain")
	b := h.expect("POST", "/api/v2/playlists/", hdr, `{"name": "x", "server": 1}`, 415)
	wantDetail(t, b, `Unsupported media type "text/plain" in request.`)

	hdr.Set("Content-Type", "application/json; charset=utf-8")
	h.expect("POST", "/api/v2/playlists/", hdr, `{"name": "x", "server": 1}`, 201)
}
