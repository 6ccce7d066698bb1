package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// memSample is one reading of a target's memory while it is under load.
type memSample struct {
	T     float64 `json:"t_s"`             // seconds of load on this target so far
	RSS   int64   `json:"rss_bytes"`       // resident memory of its process group
	Anon  int64   `json:"anon_bytes"`      // the anonymous part of RSS (not the program's file pages)
	Heap  int64   `json:"heap_bytes"`      // Go heap in use (Go targets), else 0
	Phase string  `json:"phase,omitempty"` // the run it was taken in, e.g. "c=256" or "2000/s"
}

// memTrack is a target's memory over one scenario: at rest after the checks,
// then sampled through every measured run (not the warm-ups).
type memTrack struct {
	Scenario string      `json:"scenario"`
	Target   string      `json:"target"`
	IdleRSS  int64       `json:"idle_rss_bytes"`
	IdleAnon int64       `json:"idle_anon_bytes"`
	IdleHeap int64       `json:"idle_heap_bytes"`
	Samples  []memSample `json:"samples"`
}

// memInterval is how often a target's memory is read under load.
const memInterval = 500 * time.Millisecond

// sampler reads one target's memory.
type sampler struct {
	pgid    int
	metrics string // the target's Prometheus endpoint, "" when it has none
	hc      *http.Client
}

// read returns the group's RSS, its anonymous part and, when the target
// exposes one, its heap in use (go_memstats_heap_inuse_bytes).
func (s sampler) read(ctx context.Context) (rss, anon, heap int64) {
	if st, err := readGroupStats(s.pgid); err == nil {
		rss, anon = st.RSSBytes, st.AnonBytes
	}
	if s.metrics == "" {
		return rss, anon, 0
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metrics, nil)
	if err != nil {
		return rss, anon, 0
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return rss, anon, 0
	}
	defer resp.Body.Close()
	heap, _ = heapInUse(resp.Body)
	return rss, anon, heap
}

// heapInUse finds go_memstats_heap_inuse_bytes in a Prometheus text page.
func heapInUse(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("go_memstats_heap_inuse_bytes: %w", err)
		}
		return int64(v), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes")
}

// during samples s every memInterval until the returned stop is called;
// stop returns the samples, timed from offset (the target's load so far).
func (s sampler) during(ctx context.Context, offset time.Duration, phase string) (stop func() []memSample) {
	done := make(chan struct{})
	out := make(chan []memSample, 1)
	go func() {
		start := time.Now()
		take := func() memSample {
			rss, anon, heap := s.read(ctx)
			return memSample{T: (offset + time.Since(start)).Seconds(), RSS: rss, Anon: anon, Heap: heap, Phase: phase}
		}
		samples := []memSample{take()} // one at the start of every run
		t := time.NewTicker(memInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				out <- samples
				return
			case <-ctx.Done():
				out <- samples
				return
			case <-t.C:
				samples = append(samples, take())
			}
		}
	}()
	return func() []memSample { close(done); return <-out }
}

// peak is the largest RSS, anonymous RSS and heap of the samples.
func (m memTrack) peak() (rss, anon, heap int64) {
	rss, anon, heap = m.IdleRSS, m.IdleAnon, m.IdleHeap
	for _, s := range m.Samples {
		rss, anon, heap = max(rss, s.RSS), max(anon, s.Anon), max(heap, s.Heap)
	}
	return rss, anon, heap
}

// memoryMarkdown is the memory table of one scenario: at rest after the
// checks, the peaks under load, and the RSS at the end of the last
// closed-loop run (the highest concurrency).
func memoryMarkdown(b *strings.Builder, scenario string, tracks []memTrack, results []result) {
	var ts []memTrack
	for _, t := range tracks {
		if t.Scenario == scenario {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return
	}
	b.WriteString("\nMemory (process group RSS, and its anonymous part: RSS less the program's file pages; Go heap in use from the target's /metrics, for bare and scgate; sampled every 0.5 s through the measured runs, see the memory chart):\n\n")
	b.WriteString("| target | idle RSS MB | idle anon MB | idle heap MB | peak RSS MB | peak anon MB | peak heap MB | RSS after the last closed-loop run MB |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, t := range ts {
		rss, anon, heap := t.peak()
		last := "–"
		var lastConns int
		for _, r := range results {
			if r.Scenario == scenario && r.Target == t.Target && r.Conns >= lastConns {
				lastConns, last = r.Conns, fmt.Sprintf("%.1f (c=%d)", float64(r.RSS)/(1<<20), r.Conns)
			}
		}
		fmt.Fprintf(b, "| %s | %.1f | %.1f | %s | %.1f | %.1f | %s | %s |\n", t.Target, float64(t.IdleRSS)/(1<<20), float64(t.IdleAnon)/(1<<20),
			heapMB(t.IdleHeap), float64(rss)/(1<<20), float64(anon)/(1<<20), heapMB(heap), last)
	}
}

func heapMB(n int64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(n)/(1<<20))
}

// memoryChart draws RSS over each target's load time, one panel per
// scenario, one line per target (heap as a dashed line of the same colour).
func memoryChart(tracks []memTrack) string {
	const (
		width, panelH    = 900, 260
		left, right, top = 70, 170, 30
		bottomPad        = 40
	)
	var scens []string
	for _, t := range tracks {
		if !contains(scens, t.Scenario) {
			scens = append(scens, t.Scenario)
		}
	}
	height := max(len(scens)*(panelH+top)+10, 40)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	if len(scens) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="24">No memory samples: written by go run ./bench -chart bench/chart.svg</text>`+"\n", left)
	}
	for si, s := range scens {
		var maxT, maxMB float64
		var ts []memTrack
		for _, t := range tracks {
			if t.Scenario != s {
				continue
			}
			ts = append(ts, t)
			for _, m := range t.Samples {
				maxT = max(maxT, m.T)
				maxMB = max(maxMB, float64(max(m.RSS, m.Heap))/(1<<20))
			}
		}
		maxT = max(maxT, 1)
		scale := niceCeilMB(maxMB)
		y0 := si*(panelH+top) + top
		plotH, plotW := panelH-bottomPad, width-left-right
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s: RSS (solid) and Go heap (dashed), MB, by seconds of load</text>`+"\n", left, y0-10, s)
		for i := 0; i <= 4; i++ {
			y := float64(y0+plotH) - float64(plotH)*float64(i)/4
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y+4, scale*float64(i)/4)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">0 s</text><text x="%d" y="%d" text-anchor="end">%.0f s</text>`+"\n",
			left, y0+plotH+18, left+plotW, y0+plotH+18, maxT)
		for ti, t := range ts {
			for _, heap := range []bool{false, true} {
				var pts []string
				for _, m := range t.Samples {
					v := m.RSS
					if heap {
						v = m.Heap
					}
					if v == 0 {
						continue
					}
					x := float64(left) + float64(plotW)*m.T/maxT
					y := float64(y0+plotH) - float64(plotH)*float64(v)/(1<<20)/scale
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
				}
				if len(pts) == 0 {
					continue
				}
				dash := ""
				if heap {
					dash = ` stroke-dasharray="4 3"`
				}
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"><title>%s</title></polyline>`+"\n",
					colour(t.Target), dash, strings.Join(pts, " "), t.Target)
			}
			ly := y0 + 10 + ti*18
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
				left+plotW+16, ly, colour(t.Target), left+plotW+34, ly+10, t.Target)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeilMB rounds v up to 1, 2 or 5 times a power of ten (at least 10).
func niceCeilMB(v float64) float64 {
	if v <= 10 {
		return 10
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
