package main

import (
	"strings"
	"testing"
	"time"
)

// Each target is checked from the run's own figures: met, not met, or not
// measured when a target it compares with did not run.
func TestGoalsFromTheRun(t *testing.T) {
	us := time.Microsecond
	d := runData{
		Results: []result{
			{Scenario: "sidecar", Target: "bare", Conns: 32, RPS: 10000, CPUPerReq: 80 * us, OK: true},
			{Scenario: "sidecar", Target: "scgate-min", Conns: 32, RPS: 9600, CPUPerReq: 84 * us, RSS: 30 << 20, OK: true},
			{Scenario: "sidecar", Target: "scgate-full", Conns: 32, RPS: 8000, CPUPerReq: 100 * us, RSS: 31 << 20, OK: true},
			{Scenario: "sidecar", Target: "bare", Conns: 256, RPS: 10000, CPUPerReq: 80 * us, OK: true},
			{Scenario: "sidecar", Target: "scgate-min", Conns: 256, RPS: 9400, CPUPerReq: 90 * us, RSS: 20 << 20, OK: true},
			{Scenario: "sidecar", Target: "nginx", Conns: 256, RPS: 20000, RSS: 21 << 20, OK: true},
		},
		Memory: []memTrack{{Scenario: "sidecar", Target: "scgate-min", IdleRSS: 9 << 20, IdleAnon: 2 << 20}},
		Open: []openResult{
			{Scenario: "sidecar", Target: "direct", Rate: 500, Sent: 5000, P99: 1000 * us},
			{Scenario: "sidecar", Target: "nginx", Rate: 500, Sent: 5000, P99: 1100 * us},
			{Scenario: "sidecar", Target: "scgate-full", Rate: 500, Sent: 5000, P99: 1300 * us},
		},
	}
	want := []goal{
		{"scgate-min req/s ≥ 0.95× bare", "0.96× at c=32, 0.94× at c=256", "no"},
		{"scgate-min CPU/req ≤ 1.10× bare", "1.05× at c=32, 1.12× at c=256", "no"},
		{"scgate-full req/s ≥ 0.90× bare", "0.80× at c=32", "no"},
		{"scgate-min idle RSS ≤ 10 MB", "9.0 MB (2.0 MB of it anonymous)", "yes"},
		{"scgate-min RSS after c=256 ≤ nginx's", "20.0 MB against 21.0 MB", "yes"},
		{"scgate-full RSS after c=256 ≤ nginx's", "not measured (nginx or scgate-full missing)", "–"},
		{"scgate-full added p99 ≤ nginx's + 250 µs at 500 req/s", "+300 µs against nginx's +100 µs", "yes"},
		{"scgate-full added p99 ≤ nginx's + 250 µs at 2000 req/s", "not measured (direct, nginx or scgate-full missing at this rate)", "–"},
	}
	got := goals(d, "sidecar")
	if len(got) != len(want) {
		t.Fatalf("%d goals: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("goal %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	var b strings.Builder
	goalsMarkdown(&b, d, "sidecar")
	if !strings.Contains(b.String(), "| scgate-min idle RSS ≤ 10 MB | 9.0 MB (2.0 MB of it anonymous) | yes |") {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	goalsMarkdown(&b, d, "scale")
	if b.Len() != 0 {
		t.Errorf("targets for a scenario that measured none: %s", b.String())
	}
}
