package adminauth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestBasicAuth(t *testing.T) {
	g := New(Options{Password: "correct horse"})
	srv := httptest.NewServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("page")) })))
	defer srv.Close()
	for _, tc := range []struct {
		name, user, pass string
		set              bool
		want             int
	}{
		{"none", "", "", false, 401},
		{"wrong password", "admin", "correct hors", true, 401},
		{"wrong user", "root", "correct horse", true, 401},
		{"right", "admin", "correct horse", true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			if tc.set {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate challenge")
			}
		})
	}
}

// A connection without a verified client certificate is refused when one
// is required, whatever password it brings.
func TestClientCertRequired(t *testing.T) {
	g := New(Options{RequireClientCert: true})
	srv := httptest.NewTLSServer(g.Wrap(http.NotFoundHandler()))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d without a client certificate, want 403", resp.StatusCode)
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if pw, err := ReadPassword(write("ok", "s3cret\r\nignored\n")); err != nil || pw != "s3cret" {
		t.Errorf("got %q, %v", pw, err)
	}
	for _, p := range []string{write("empty", "\n"), write("big", string(make([]byte, MaxPasswordFile+1))), filepath.Join(dir, "missing")} {
		if _, err := ReadPassword(p); err == nil {
			t.Errorf("%s: no error", filepath.Base(p))
		}
	}
}
