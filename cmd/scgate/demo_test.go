package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestInteractiveDemoRotation: the rotation the interactive demo offers
// works as its vault comment says: uncommenting the newer version makes it
// the active one, and the stand-in accepts it (no rejection, no failover).
func TestInteractiveDemoRotation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- cmdDemo(ctx, demoOptions{listen: "127.0.0.1:0", admin: "127.0.0.1:0"}, &out, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	waitUntil(t, "the demo's instructions", func() bool { return strings.Contains(out.String(), "Ctrl-C stops") })
	text := out.String()
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %s in the demo's output:\n%s", re, text)
		}
		return m[1]
	}
	base, admin := find(`a gateway on (http://\S+) in front`), find(`curl -s (http://\S+)/metrics`)
	vaultPath := find(`applied within a second\): (\S+)`)
	for _, want := range []string{"city-sync (from 127.0.0.6) is scoped to station 3", "server=3'   # station 3: answered", "server=4'   # station 4: 403 station_forbidden"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's instructions lack %q:\n%s", want, text)
		}
	}

	raw, err := os.ReadFile(vaultPath)
	if err != nil {
		t.Fatal(err)
	}
	commented := "# [[keys.playlist-admin]]\n# secret = "
	if !strings.Contains(string(raw), commented) {
		t.Fatalf("the demo vault offers no rotation:\n%s", raw)
	}
	rotated := strings.Replace(string(raw), commented, "[[keys.playlist-admin]]\nsecret = ", 1)
	if err := os.WriteFile(vaultPath+".new", []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(vaultPath+".new", vaultPath); err != nil {
		t.Fatal(err)
	}

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const active = `scgate_key_active{key="playlist-admin",prefix="DemoAdm2"} 1`
	waitUntil(t, "the newer version to be active and answered", func() bool {
		code, _ := get(base + "/api/v2/playlists/?server=1")
		_, metrics := get(admin + "/metrics")
		return code == http.StatusOK && strings.Contains(metrics, active)
	})
	_, metrics := get(admin + "/metrics")
	if m := regexp.MustCompile(`scgate_upstream_key_rejections_total\{[^}]*prefix="DemoAdm2"[^}]*\} ([0-9.e+]+)`).FindStringSubmatch(metrics); m != nil && m[1] != "0" {
		t.Fatalf("the stand-in refused the offered version (%s rejections)", m[1])
	}
}
