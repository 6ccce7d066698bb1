package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A request sent after its due time is charged the lag: the latency a
// caller would have seen had it sent on schedule.
func TestOpenLatenciesCountFromTheSchedule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	hits := []hit{ // 100 req/s: due every 10 ms
		{seq: 0, start: t0, latency: 2 * ms, ok: true},
		{seq: 1, start: t0.Add(10 * ms), latency: 2 * ms, ok: true},
		{seq: 2, start: t0.Add(70 * ms), latency: 2 * ms, ok: true}, // due at 20 ms: 50 ms late
		{seq: 3, start: t0.Add(30 * ms), latency: 40 * ms, ok: false},
	}
	sorted, failed, late := openLatencies(hits, 100)
	want := []time.Duration{2 * ms, 2 * ms, 40 * ms, 52 * ms}
	if len(sorted) != len(want) {
		t.Fatalf("%v", sorted)
	}
	for i := range want {
		if sorted[i] != want[i] {
			t.Fatalf("latencies %v, want %v", sorted, want)
		}
	}
	if failed != 1 || late != 50*ms {
		t.Fatalf("failed %d, max lag %v", failed, late)
	}
	if q := quantile(sorted, 0.5); q != 2*ms {
		t.Errorf("p50 %v", q)
	}
	if q := quantile(sorted, 0.999); q != 52*ms {
		t.Errorf("p99.9 %v", q)
	}
	if s, _, _ := openLatencies(nil, 100); s != nil {
		t.Errorf("no hits: %v", s)
	}
}

// Against an upstream that stalls every answer for its first 300 ms, the
// open loop keeps sending on schedule, and the requests due during the
// stall show the wait: a closed loop would have sent a handful and hidden
// the rest (coordinated omission).
func TestOpenLoopSeesAStall(t *testing.T) {
	gate := make(chan struct{})
	var opened bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Sc-Api-Key") != "k" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		<-gate
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	stall := time.AfterFunc(300*time.Millisecond, func() { opened = true; close(gate) })
	defer func() {
		if stall.Stop() && !opened {
			close(gate)
		}
	}()
	r, err := openLoop(context.Background(), srv.URL+"/api/v2/playlists/?server=1", "SC-API-KEY: k", nil, 100, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent < 90 || r.Sent > 101 || r.Errors != 0 {
		t.Fatalf("sent %d, %d errors; want about 100 without errors", r.Sent, r.Errors)
	}
	// About 30 requests were due in the stall: well over 1% of 100, so p99
	// shows it, while most requests came after it.
	if r.P99 < 150*time.Millisecond || r.Max < 200*time.Millisecond {
		t.Errorf("p99 %v, max %v: the stall is not in the latencies", r.P99, r.Max)
	}
	if r.P50 > r.P99 {
		t.Errorf("p50 %v above p99 %v", r.P50, r.P99)
	}
}

func TestOpenLoopRefusesOtherHosts(t *testing.T) {
	if _, err := openLoop(context.Background(), "http://192.0.2.1:80/api/v2/playlists/?server=1", "", nil, 10, time.Second); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a non-loopback target was loaded: %v", err)
	}
}

func TestOpenTableShowsAddedLatency(t *testing.T) {
	ms := time.Millisecond
	all := []openResult{
		{Scenario: "sidecar", Target: "direct", Rate: 500, Sent: 5000, P50: ms, P99: 2 * ms, P999: 3 * ms},
		{Scenario: "sidecar", Target: "scgate-full", Rate: 500, Sent: 5000, P50: ms + 120*time.Microsecond, P99: 2*ms + 300*time.Microsecond, P999: 5 * ms},
		{Scenario: "sidecar", Target: "scgate-full", Rate: 2000, Sent: 20000, P50: ms},
	}
	var b strings.Builder
	openMarkdown(&b, "sidecar", all)
	for _, want := range []string{"| scgate-full | 500 | 5000 | 0 | 1120 µs | 2300 µs | 5000 µs | +120 µs | +300 µs | +2000 µs |",
		"| scgate-full | 2000 | 20000 | 0 | 1000 µs | 0 µs | 0 µs | – | – | – |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	openMarkdown(&b, "gateway", all)
	if b.Len() != 0 {
		t.Errorf("a table for a scenario without open-loop runs: %s", b.String())
	}
}
