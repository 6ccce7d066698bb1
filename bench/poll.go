package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The poll scenario: many services polling the same status read (now
// playing: the history with limit=1) at a fixed pace, as radio networks'
// websites, apps and screens do. wrk loads as fast as it can; this load is
// paced, because what it measures is how many of the pollers' requests
// reach the broadcaster, not how many a proxy can pass.

// nowPlaying is the path the pollers ask for.
const nowPlaying = "/api/v2/history/?limit=1&offset=0&server=1"

// pollLoad is one paced load.
type pollLoad struct {
	URL      string
	Header   http.Header // sent on every request (the key, for direct)
	Pollers  int
	Interval time.Duration
	Duration time.Duration
	Roots    *x509.CertPool // for an https URL
}

// pollResult is what a paced load measured.
type pollResult struct {
	Requests int64
	Errors   int64 // transport errors and answers other than 200
	P50, P99 time.Duration
	Elapsed  time.Duration
}

// run polls: each poller asks every Interval (starts spread over the
// first interval), until Duration has passed or ctx ends. A poll that is
// due while the previous one is still out is skipped, as a timer-driven
// client would.
func (l pollLoad) run(ctx context.Context) pollResult {
	tr := &http.Transport{
		MaxIdleConns: l.Pollers, MaxIdleConnsPerHost: l.Pollers,
		IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		TLSClientConfig: &tls.Config{RootCAs: l.Roots, MinVersion: tls.VersionTLS12},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	for i := range l.Pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := l.Interval * time.Duration(i) / time.Duration(l.Pollers)
			select {
			case <-ctx.Done():
				return
			case <-time.After(offset):
			}
			tick := time.NewTicker(l.Interval)
			defer tick.Stop()
			var own []time.Duration
			var ownErrs int64
			for {
				t0 := time.Now()
				ok := l.poll(ctx, client)
				if ctx.Err() != nil {
					break // a poll cut by the end of the run is not counted
				}
				own = append(own, time.Since(t0))
				if !ok {
					ownErrs++
				}
				select {
				case <-ctx.Done():
				case <-tick.C:
					continue
				}
				break
			}
			mu.Lock()
			latencies = append(latencies, own...)
			errs += ownErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := pollResult{Requests: int64(len(latencies)), Errors: errs, Elapsed: time.Since(start)}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		r.P50 = latencies[len(latencies)/2]
		r.P99 = latencies[len(latencies)*99/100]
	}
	return r
}

func (l pollLoad) poll(ctx context.Context, client *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL+nowPlaying, nil)
	if err != nil {
		return false
	}
	for k, v := range l.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// upstreamPerSecond is the rate the upstream saw, given its counts before
// and after a load.
func upstreamPerSecond(before, after upstreamStats, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(after.History-before.History) / d.Seconds()
}

// boundedTarget is the target whose check bounds the upstream's share:
// scgate's cache promises at most one request per TTL per cache key.
// nginx-cache is measured beside it and not held to that: proxy_cache_lock
// coalesces the misses of a new entry only, so each expiry of a polled
// entry lets a burst through (proxy_cache_use_stale updating would trade
// that for stale answers).
func boundedTarget(name string) bool { return name == "scgate-cache" }

// measurePoll runs the paced load against t. For scgate-cache the check is
// the point of the scenario: the upstream saw at most one request per
// second for the one cache key (plus one for the run's edges).
func (b *bench) measurePoll(ctx context.Context, s scenario, t *target, upURL string) (result, error) {
	var header http.Header
	if t.Header != "" {
		header = http.Header{"Sc-Api-Key": {benchKey}}
	}
	load := pollLoad{URL: t.URL, Header: header, Pollers: b.cfg.Pollers, Interval: b.cfg.PollInterval, Duration: b.cfg.Duration, Roots: b.cl.roots}
	if b.cfg.Warmup > 0 {
		warm := load
		warm.Duration = b.cfg.Warmup
		warm.run(ctx)
	}
	pr := t.proc
	up0, err := b.cl.upstreamStatsAt(ctx, upURL)
	if err != nil {
		return result{}, err
	}
	var st0 groupStats
	if pr != nil {
		if st0, err = readGroupStats(pr.cmd.Process.Pid); err != nil {
			return result{}, fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	pl := load.run(ctx)
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	up1, err := b.cl.upstreamStatsAt(ctx, upURL)
	if err != nil {
		return result{}, err
	}
	r := result{Scenario: s.Name, Target: t.Name, Conns: b.cfg.Pollers, P50: pl.P50, P99: pl.P99, Errors: pl.Errors,
		UpConns: up1.Conns - up0.Conns, UpstreamRPS: upstreamPerSecond(up0, up1, pl.Elapsed)}
	if pl.Elapsed > 0 {
		r.RPS = float64(pl.Requests) / pl.Elapsed.Seconds()
	}
	if pr != nil {
		st1, err := readGroupStats(pr.cmd.Process.Pid)
		if err != nil {
			return result{}, fmt.Errorf("%s (did it crash? see %s): %w", t.Name, pr.log, err)
		}
		r.RSS = st1.RSSBytes
		if pl.Requests > 0 {
			r.CPUPerReq = (st1.CPU - st0.CPU) / time.Duration(pl.Requests)
		}
	}
	r.OK, r.Note = pollVerdict(t.Name, load, pl, up1.History-up0.History)
	return r, nil
}

// pollVerdict checks a paced run: no errors, the pollers' pace kept (at
// least half the requests they were due), and for a caching target at most
// one upstream request per second of the run, plus one at each edge
// (boundedTarget).
func pollVerdict(target string, l pollLoad, pl pollResult, upstream int64) (bool, string) {
	due := int64(l.Pollers) * int64(pl.Elapsed/l.Interval)
	switch {
	case pl.Requests == 0:
		return false, "no request completed"
	case pl.Errors > 0:
		return false, fmt.Sprintf("%d requests failed", pl.Errors)
	case pl.Requests < due/2:
		return false, fmt.Sprintf("the pollers could not keep their pace: %d requests of %d due", pl.Requests, due)
	}
	if boundedTarget(target) {
		if limit := int64(pl.Elapsed/time.Second) + 2; upstream > limit {
			return false, fmt.Sprintf("the upstream saw %d requests in %v, over one per second per cache key (at most %d)", upstream, pl.Elapsed.Round(time.Millisecond), limit)
		}
	}
	return true, ""
}
