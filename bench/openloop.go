package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// openResult is one open-loop run: requests sent at a fixed rate whatever
// the answers do, latencies counted from when each request was due.
type openResult struct {
	Scenario string        `json:"scenario"`
	Target   string        `json:"target"`
	Rate     int           `json:"rate"`
	Sent     int64         `json:"sent"`
	Errors   int64         `json:"errors"` // transport errors and non-2xx answers
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
	Max      time.Duration `json:"max_ns"`
	// MaxLate is how far behind its schedule the latest request was sent:
	// large values mean the load generator itself was starved of CPU.
	MaxLate time.Duration `json:"max_late_ns"`
}

// hit is what the open loop keeps of one vegeta result.
type hit struct {
	seq     uint64
	start   time.Time // when it was sent
	latency time.Duration
	ok      bool
}

// openLatencies corrects for coordinated omission: request seq was due at
// began + seq/rate, so its latency is counted from then, not from when it
// was actually sent. began is estimated as the earliest schedule that no
// request ran ahead of (requests are never sent early). It returns the
// corrected latencies, sorted, the number of failures and the largest lag
// between due and sent.
func openLatencies(hits []hit, rate int) (sorted []time.Duration, failed int64, maxLate time.Duration) {
	if len(hits) == 0 || rate <= 0 {
		return nil, 0, 0
	}
	period := time.Second / time.Duration(rate)
	began := hits[0].start.Add(-time.Duration(hits[0].seq) * period)
	for _, h := range hits[1:] {
		if b := h.start.Add(-time.Duration(h.seq) * period); b.Before(began) {
			began = b
		}
	}
	sorted = make([]time.Duration, 0, len(hits))
	for _, h := range hits {
		due := began.Add(time.Duration(h.seq) * period)
		late := h.start.Sub(due)
		maxLate = max(maxLate, late)
		sorted = append(sorted, late+h.latency)
		if !h.ok {
			failed++
		}
	}
	slices.Sort(sorted)
	return sorted, failed, maxLate
}

// quantile is the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// openLoop sends GET url with header at rate requests per second for d,
// with vegeta's attacker: its worker pool grows without bound, so a slow
// answer never holds back the next request.
func openLoop(ctx context.Context, url, header string, roots *x509.CertPool, rate int, d time.Duration) (openResult, error) {
	if err := checkLoopbackURL(strings.TrimSuffix(url, "/api/v2/playlists/?server=1")); err != nil {
		return openResult{}, err
	}
	hdr := http.Header{}
	if k, v, ok := strings.Cut(header, ":"); ok {
		hdr.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	atk := vegeta.NewAttacker(
		vegeta.KeepAlive(true), vegeta.HTTP2(false), vegeta.Timeout(5*time.Second),
		vegeta.Connections(4096), vegeta.Redirects(vegeta.NoFollow),
		vegeta.TLSConfig(&tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}),
	)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: url, Header: hdr})
	hits := make([]hit, 0, int(d.Seconds()*float64(rate))+16)
	for res := range atk.Attack(tr, vegeta.ConstantPacer{Freq: rate, Per: time.Second}, d, "bench") {
		hits = append(hits, hit{seq: res.Seq, start: res.Timestamp, latency: res.Latency,
			ok: res.Error == "" && res.Code >= 200 && res.Code < 300})
	}
	if err := ctx.Err(); err != nil {
		return openResult{}, err
	}
	if len(hits) == 0 {
		return openResult{}, fmt.Errorf("open loop at %d req/s: nothing was sent", rate)
	}
	sorted, failed, late := openLatencies(hits, rate)
	return openResult{Rate: rate, Sent: int64(len(hits)), Errors: failed,
		P50: quantile(sorted, 0.50), P99: quantile(sorted, 0.99), P999: quantile(sorted, 0.999),
		Max: sorted[len(sorted)-1], MaxLate: late}, nil
}

// added is r's latency over direct's at the same rate in the same scenario,
// at the quantile get picks, or "–" without a direct run.
func added(r openResult, all []openResult, get func(openResult) time.Duration) string {
	for _, o := range all {
		if o.Scenario == r.Scenario && o.Rate == r.Rate && o.Target == "direct" && o.Sent > 0 {
			return fmt.Sprintf("%+.0f µs", float64(get(r)-get(o))/1e3)
		}
	}
	return "–"
}

// openMarkdown is the open-loop table of one scenario.
func openMarkdown(b *strings.Builder, scenario string, all []openResult) {
	var rs []openResult
	for _, r := range all {
		if r.Scenario == scenario {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return
	}
	b.WriteString("\nOpen loop (fixed rates; latency from when each request was due; added = over `direct` at the same rate):\n\n")
	b.WriteString("| target | req/s | sent | errors | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | max send lag |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	p50 := func(o openResult) time.Duration { return o.P50 }
	p99 := func(o openResult) time.Duration { return o.P99 }
	p999 := func(o openResult) time.Duration { return o.P999 }
	for _, r := range rs {
		fmt.Fprintf(b, "| %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Target, r.Rate, r.Sent, r.Errors,
			us(r.P50), us(r.P99), us(r.P999), added(r, all, p50), added(r, all, p99), added(r, all, p999), us(r.MaxLate))
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }
