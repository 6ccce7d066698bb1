package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// TestStandinServesSeveralPanels runs `scgate standin` with two panels and
// checks, through their sockets, that each accepts its own key only.
func TestStandinServesSeveralPanels(t *testing.T) {
	const north, south = "NorthKe1.FAKEfakeFAKEfakeFAKEfake", "SouthKe1.FAKEfakeFAKEfakeFAKEfake"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, []string{"standin", "--panel", "north=127.0.0.1:0", "--panel", "south=127.0.0.1:0",
			"--key", "north:" + north, "--key", "south:" + south}, pw, io.Discard)
		_ = pw.Close()
	}()
	addrs := map[string]string{}
	line := regexp.MustCompile(`panel (\w+) on http://([^/]+)/`)
	sc := bufio.NewScanner(pr)
	for len(addrs) < 2 && sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			addrs[m[1]] = m[2]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if len(addrs) != 2 {
		t.Fatalf("panels announced: %v", addrs)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	for panel, addr := range addrs {
		for key, want := range map[string]int{north: http.StatusOK, south: http.StatusOK} {
			if (panel == "north") != (key == north) {
				want = http.StatusForbidden
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v2/playlists/?server=1", nil)
			req.Header.Set("SC-API-KEY", key)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("panel %s with the %s key: %d, want %d", panel, map[bool]string{true: "north", false: "south"}[key == north], resp.StatusCode, want)
			}
		}
	}
	tr.CloseIdleConnections()
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestStandinPanelFlags checks the flag combinations refused as usage
// errors.
func TestStandinPanelFlags(t *testing.T) {
	for _, args := range [][]string{
		{"standin", "--panel", "north=127.0.0.1:0", "--key", "K1.FAKEfakeFAKEfake"},
		{"standin", "--panel", "North=127.0.0.1:0", "--key", "North:K1"},
		{"standin", "--panel", "north=127.0.0.1:0", "--panel", "north=127.0.0.1:0", "--key", "north:K1"},
		{"standin", "--panel", "north=127.0.0.1:0", "--listen", "127.0.0.1:0", "--key", "north:K1"},
		{"standin", "--panel", "north=127.0.0.1:0", "--panel", "south=127.0.0.1:0", "--key", "north:K1"},
	} {
		if code, _, errOut := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}
