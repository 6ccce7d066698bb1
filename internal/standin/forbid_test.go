package standin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestForbiddenRouteKeepsTheKeyValid: a route forbidden to a key answers
// DRF's permission refusal, while the key works elsewhere and other keys
// still use the route; a wrong key is refused as a wrong key first.
func TestForbiddenRouteKeepsTheKeyValid(t *testing.T) {
	const ro, admin = "Readonly.FAKEfakeFAKEfakeFAKEfakeFAKEfake", "AdminKey.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	s, err := New(Options{Keys: []string{ro, admin}, Forbidden: []Forbidden{{Key: ro, Method: "GET", Path: "/api/v2/playlists/1/"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	get := func(method, path, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if key != "" {
			req.Header.Set(KeyHeader, key)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("GET", "/api/v2/playlists/1/", ro); code != 403 || body != `{"detail":"You do not have permission to perform this action."}` {
		t.Fatalf("forbidden route: %d %s", code, body)
	}
	if code, _ := get("HEAD", "/api/v2/playlists/1/", ro); code != 403 {
		t.Fatalf("HEAD on the forbidden route: %d", code)
	}
	if code, body := get("GET", "/api/v2/playlists/?server=1", ro); code != 200 {
		t.Fatalf("the same key elsewhere: %d %s", code, body)
	}
	if code, body := get("GET", "/api/v2/playlists/1/", admin); code != 200 {
		t.Fatalf("another key on the route: %d %s", code, body)
	}
	if code, body := get("GET", "/api/v2/playlists/1/", "WrongKey.FAKEfakeFAKEfakeFAKEfakeFAKEfake"); code != 403 || !strings.Contains(body, "Invalid API key.") {
		t.Fatalf("a wrong key: %d %s", code, body)
	}
	reqs := s.Requests()
	if !reqs[0].Accepted || reqs[0].Status != 403 || reqs[len(reqs)-1].Accepted {
		t.Fatalf("recorded %+v", reqs)
	}
	s.SetForbidden(nil)
	if code, _ := get("GET", "/api/v2/playlists/1/", ro); code != 200 {
		t.Fatalf("after SetForbidden(nil): %d", code)
	}
}
