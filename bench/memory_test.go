package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func TestHeapInUse(t *testing.T) {
	page := "# HELP go_memstats_heap_inuse_bytes x\n# TYPE go_memstats_heap_inuse_bytes gauge\ngo_memstats_heap_inuse_bytes 3.5127296e+06\ngo_memstats_heap_inuse_bytes_total 1\n"
	if n, err := heapInUse(strings.NewReader(page)); err != nil || n != 3512729 {
		t.Fatalf("%d, %v", n, err)
	}
	if _, err := heapInUse(strings.NewReader("go_goroutines 7\n")); err == nil {
		t.Fatal("a page without the heap was read")
	}
}

var testTracks = []memTrack{
	{Scenario: "sidecar", Target: "scgate-min", IdleRSS: 9 << 20, IdleAnon: 2 << 20, IdleHeap: 3 << 20, Samples: []memSample{
		{T: 0.5, RSS: 30 << 20, Anon: 20 << 20, Heap: 12 << 20, Phase: "c=32"}, {T: 1, RSS: 50 << 20, Anon: 40 << 20, Heap: 20 << 20, Phase: "c=256"}, {T: 1.5, RSS: 40 << 20, Heap: 10 << 20, Phase: "500/s"}}},
	{Scenario: "sidecar", Target: "nginx", IdleRSS: 5 << 20, Samples: []memSample{{T: 0.5, RSS: 21 << 20}}},
}

func TestMemoryTableAndChart(t *testing.T) {
	results := []result{
		{Scenario: "sidecar", Target: "scgate-min", Conns: 32, RSS: 30 << 20},
		{Scenario: "sidecar", Target: "scgate-min", Conns: 256, RSS: 48 << 20},
	}
	var b strings.Builder
	memoryMarkdown(&b, "sidecar", testTracks, results)
	for _, want := range []string{"| scgate-min | 9.0 | 2.0 | 3.0 | 50.0 | 40.0 | 20.0 | 48.0 (c=256) |", "| nginx | 5.0 | 0.0 | – | 21.0 | 0.0 | – | – |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	svg := memoryChart(testTracks)
	dec := xml.NewDecoder(strings.NewReader(svg))
	lines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 3 { // scgate-min RSS and heap, nginx RSS
		t.Errorf("%d lines, want 3", lines)
	}
}

// The sampler reads a live process group and stops when told.
func TestSamplerReadsItsOwnGroup(t *testing.T) {
	var p procs
	pr, err := p.start("sleeper", t.TempDir(), nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stopAll(time.Second)
	s := sampler{pgid: pr.cmd.Process.Pid}
	if rss, anon, heap := s.read(t.Context()); rss <= 0 || anon <= 0 || anon > rss || heap != 0 {
		t.Fatalf("rss %d, anon %d, heap %d of a sleeping process without metrics", rss, anon, heap)
	}
	samples := s.during(t.Context(), 2*time.Second, "c=1")()
	if len(samples) == 0 {
		t.Fatal("no sample taken")
	}
	for _, m := range samples {
		if m.T < 2 || m.RSS <= 0 || m.Phase != "c=1" {
			t.Errorf("sample %+v", m)
		}
	}
}
