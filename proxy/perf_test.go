package proxy_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// JSON answers that cannot hold top-level pagination links (an array)
// stream through without being read whole; objects are still read and their
// links rewritten, however much whitespace comes first. The bytes are checked
// here; TestJSONArraysStream proves the streaming.
func TestJSONBodiesAreSniffedNotAlwaysBuffered(t *testing.T) {
	var upstreamOrigin string
	bodies := map[string]string{
		"array":       `[{"id":1,"next":"ORIGIN/api/v2/history/?offset=2"},{"id":2}]`,
		"object":      "  \n\t{\"count\":3,\"next\":\"ORIGIN/api/v2/history/?offset=2\",\"results\":[]}",
		"deep-spaces": strings.Repeat(" ", 100) + `{"next":"ORIGIN/api/v2/history/?offset=2"}`,
		"plain":       `{"id":1,"name":"x"}`,
		"empty":       ``,
		"scalar":      `"ORIGIN/api/v2/history/"`,
	}
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.ReplaceAll(bodies[r.URL.Query().Get("b")], "ORIGIN", upstreamOrigin)))
	})
	e := newEnv(t, envOptions{upstream: up})
	upstreamOrigin = e.upstream.URL
	for name, raw := range bodies {
		t.Run(name, func(t *testing.T) {
			resp, body := e.do("GET", "/api/v2/history/?b="+name, "admin", nil, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			sent := strings.ReplaceAll(raw, "ORIGIN", upstreamOrigin)
			switch name {
			case "object", "deep-spaces":
				want := strings.ReplaceAll(raw, "ORIGIN", e.gateway.URL)
				if body != want {
					t.Fatalf("got %q, want the link on the gateway: %q", body, want)
				}
			default:
				// Not an object: every byte as the broadcaster sent it.
				if body != sent {
					t.Fatalf("got %q, want it unchanged: %q", body, sent)
				}
			}
		})
	}
}

// TestJSONArraysStream: the start of a JSON array reaches the caller while
// the broadcaster is still sending the rest. The upstream waits for the
// caller to have read the first element before it finishes, so a gateway
// that buffered the whole body would never answer (and the test fails at
// its deadline).
func TestJSONArraysStream(t *testing.T) {
	callerRead := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"id":1},`))
		w.(http.Flusher).Flush()
		select {
		case <-callerRead:
		case <-r.Context().Done():
			return
		case <-time.After(30 * time.Second):
			return
		}
		_, _ = w.Write([]byte(`{"id":2}]`))
	})
	e := newEnv(t, envOptions{upstream: up})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.gateway.URL+"/api/v2/history/", nil)
	req.Header.Set("X-Test-Caller", "admin")
	resp, err := e.gateway.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len(`[{"id":1},`))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first element did not arrive before the upstream finished: %v", err)
	}
	close(callerRead)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(first)+string(rest) != `[{"id":1},{"id":2}]` {
		t.Fatalf("body %q%q, %v", first, rest, err)
	}
}

// The request metrics are resolved once per label set and cached;
// each caller, route and code still gets its own series.
func TestRequestMetricsKeepTheirSeriesThroughTheCache(t *testing.T) {
	e := newEnv(t, envOptions{})
	for range 3 {
		e.do("GET", "/api/v2/playlists/?server=1", "admin", nil, nil)
	}
	e.do("GET", "/api/v2/playlists/?server=1", "reader", nil, nil)
	e.do("GET", "/api/v2/history/", "stranger", nil, nil)
	m := e.metrics
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"admin", "GET", "/api/v2/playlists/", "200"}, 3},
		{[]string{"reader", "GET", "/api/v2/playlists/", "200"}, 1},
		{[]string{"unknown", "GET", "/api/v2/history/", "403"}, 1},
	} {
		if got := testutil.ToFloat64(m.Requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("scgate_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.RequestDuration); n != 3 {
		t.Errorf("%d request-duration series, want 3", n)
	}
	if n := testutil.CollectAndCount(m.UpstreamDuration); n != 1 {
		t.Errorf("%d upstream-duration series, want 1 (one route reached the upstream)", n)
	}
}
