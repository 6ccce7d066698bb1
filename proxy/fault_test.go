package proxy_test

// Fault injection under load: the upstream dies in mid-answer, is
// down when the gateway starts and comes back, or is slow. Every request ends
// (no hang), with the broadcaster's answer or a clean gateway error, and the
// gateway is whole afterwards (in-flight gauge back to 0; TestMain's goleak
// finds no goroutine left behind).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scgate/scgate/proxy"
)

// loadStats counts the outcomes of a load run.
type loadStats struct {
	mu       sync.Mutex
	sent     int
	outcomes map[string]int
	failures []string
}

func (s *loadStats) add(outcome string, failure error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	if s.outcomes == nil {
		s.outcomes = map[string]int{}
	}
	s.outcomes[outcome]++
	if failure != nil && len(s.failures) < 10 {
		s.failures = append(s.failures, failure.Error())
	}
}

func (s *loadStats) count(outcome string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outcomes[outcome]
}

func (s *loadStats) failed() int { return s.count("failure") }

// runLoad starts workers that call one until stop is closed (each at most
// 100000 times), and returns a function that waits for them all.
func runLoad(workers int, stop <-chan struct{}, one func(w int) (string, error)) (*loadStats, func()) {
	st := &loadStats{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range 100000 {
				select {
				case <-stop:
					return
				default:
				}
				outcome, err := one(w)
				if err != nil {
					outcome = "failure"
				}
				st.add(outcome, err)
			}
		})
	}
	return st, wg.Wait
}

// classify sends one GET as the admin caller and names the answer: "200",
// or the gateway's error code; anything else is an error.
func (e *env) classify(client *http.Client, path string, body bool) (string, error) {
	req, _ := http.NewRequest("GET", e.gateway.URL+path, nil)
	req.Header.Set("X-Test-Caller", "admin")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	if code := resp.Header.Get("Scgate-Error"); code != "" {
		return code, rerr
	}
	if resp.StatusCode != http.StatusOK || rerr != nil {
		return "", fmt.Errorf("%d (read: %v) %.100s", resp.StatusCode, rerr, b)
	}
	if body && len(b) == 0 {
		return "", errors.New("200 with an empty body")
	}
	return "200", nil
}

func waitInflightZero(t *testing.T, e *env) {
	t.Helper()
	waitFor(t, "no request in flight", 10*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Inflight) == 0 })
}

// TestFaultUpstreamKilledMidResponse: 8 callers are half-way through
// downloading 256 KiB each, and 4 more send small requests, when every
// connection of the upstream is cut (as when its process dies). Each download
// ends with an error, never as a complete body, and nothing hangs; the small
// requests get their answer or a clean 502. Then the gateway serves again.
func TestFaultUpstreamKilledMidResponse(t *testing.T) {
	const size, downloads = 256 << 10, 8
	halfway := make(chan struct{}, downloads)
	kill := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/playlists/1/excel/" {
			_, _ = io.WriteString(w, `{"ok":true}`)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := make([]byte, 8<<10)
		for i := 0; i < size/2; i += len(chunk) {
			_, _ = w.Write(chunk)
		}
		_ = http.NewResponseController(w).Flush()
		halfway <- struct{}{}
		select {
		case <-kill:
		case <-r.Context().Done():
		}
	})
	e := newEnv(t, envOptions{upstream: up})

	stop := make(chan struct{})
	client := &http.Client{Timeout: 20 * time.Second}
	small, waitSmall := runLoad(4, stop, func(int) (string, error) {
		out, err := e.classify(client, "/api/v2/history/", true)
		if err == nil && out != "200" && out != proxy.CodeUpstreamUnavailable {
			err = fmt.Errorf("gateway error %s", out)
		}
		return out, err
	})
	results := make(chan error, downloads)
	for range downloads {
		go func() {
			req, _ := http.NewRequest("GET", e.gateway.URL+"/api/v2/playlists/1/excel/", nil)
			req.Header.Set("X-Test-Caller", "admin")
			resp, err := client.Do(req)
			if err != nil {
				results <- err
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil {
				err = fmt.Errorf("a cut download read as complete: %d of %d bytes, status %d", n, size, resp.StatusCode)
				results <- err
				return
			}
			results <- nil
		}()
	}
	for range downloads {
		<-halfway
	}
	waitFor(t, "small requests under way", 10*time.Second, func() bool { return small.count("200") >= 20 })
	e.upstream.CloseClientConnections()
	close(kill)
	for range downloads {
		select {
		case err := <-results:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a download hung after the upstream died")
		}
	}
	close(stop)
	waitSmall()
	if small.failed() != 0 {
		t.Fatalf("%d of %d small requests failed: %v", small.failed(), small.sent, small.failures)
	}
	// The upstream's listener is still there: the gateway recovers at once.
	for i := range 20 {
		if out, err := e.classify(client, "/api/v2/history/", true); err != nil || out != "200" {
			t.Fatalf("request %d after the cut: %s %v", i, out, err)
		}
	}
	waitInflightZero(t, e)
	t.Logf("%d downloads cut, %d small requests (%v)", downloads, small.sent, small.outcomes)
}

// TestFaultUpstreamDownAtStartThenBack: the gateway starts while nothing
// listens at the upstream's address. Under load, every answer is a clean 502
// upstream_unavailable, fast; once the upstream is up, every caller gets
// through without a restart, and none fails again.
func TestFaultUpstreamDownAtStartThenBack(t *testing.T) {
	u := &wireUpstream{}
	e := newEnv(t, envOptions{upstream: u})
	addr := e.upstream.Listener.Addr().String()
	e.upstream.Close() // nothing listens there until the upstream comes back

	stop := make(chan struct{})
	client := &http.Client{Timeout: 20 * time.Second}
	var backSeen [4]atomic.Bool
	stats, wait := runLoad(4, stop, func(w int) (string, error) {
		out, err := e.classify(client, "/api/v2/history/", true)
		switch {
		case err != nil:
		case out == "200":
			backSeen[w].Store(true)
		case out == proxy.CodeUpstreamUnavailable && backSeen[w].Load():
			err = errors.New("502 after the upstream was back")
		case out != proxy.CodeUpstreamUnavailable:
			err = fmt.Errorf("gateway error %s while the upstream was down", out)
		}
		return out, err
	})
	waitFor(t, "50 answers while the upstream is down", 10*time.Second, func() bool {
		return stats.count(proxy.CodeUpstreamUnavailable) >= 50
	})
	if stats.count("200") != 0 {
		t.Fatal("a 200 while nothing listened")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the reserved address was taken meanwhile: %v", err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: u}}
	srv.Start()
	defer srv.Close()
	waitFor(t, "every caller to get through", 10*time.Second, func() bool {
		for i := range backSeen {
			if !backSeen[i].Load() {
				return false
			}
		}
		return true
	})
	before := stats.count("200")
	waitFor(t, "200 more answers", 10*time.Second, func() bool { return stats.count("200") >= before+200 })
	close(stop)
	wait()
	if stats.failed() != 0 {
		t.Fatalf("%d of %d requests failed: %v", stats.failed(), stats.sent, stats.failures)
	}
	waitInflightZero(t, e)
	t.Logf("%d requests: %v", stats.sent, stats.outcomes)
}

// TestFaultSlowUpstreamUnderLoad: while half the callers hit a route the
// upstream never answers, they get 504 upstream_timeout at the configured
// timeout and the upstream sees each of those requests cancelled; the other
// half keep getting 200 meanwhile.
func TestFaultSlowUpstreamUnderLoad(t *testing.T) {
	var started, cancelled atomic.Int64
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/slow/" {
			_, _ = io.WriteString(w, `{"ok":true}`)
			return
		}
		started.Add(1)
		select {
		case <-r.Context().Done():
			cancelled.Add(1)
		case <-time.After(20 * time.Second):
		}
	})
	// The timeout leaves the fast route a second: it must not fail for a
	// slow machine, only for being held up by the slow route.
	e := newEnv(t, envOptions{upstream: up, transport: proxy.TransportOptions{ResponseHeaderTimeout: time.Second}})
	stop := make(chan struct{})
	client := &http.Client{Timeout: 20 * time.Second}
	stats, wait := runLoad(8, stop, func(w int) (string, error) {
		if w%2 == 0 {
			out, err := e.classify(client, "/api/v2/slow/", false)
			if err == nil && out != proxy.CodeUpstreamTimeout {
				err = fmt.Errorf("slow route: %s", out)
			}
			return out, err
		}
		out, err := e.classify(client, "/api/v2/history/", true)
		if err == nil && out != "200" {
			err = fmt.Errorf("fast route: %s", out)
		}
		return out, err
	})
	waitFor(t, "8 timeouts", 20*time.Second, func() bool { return stats.count(proxy.CodeUpstreamTimeout) >= 8 })
	close(stop)
	wait()
	if stats.failed() != 0 {
		t.Fatalf("%d of %d requests failed: %v", stats.failed(), stats.sent, stats.failures)
	}
	if stats.count("200") < stats.count(proxy.CodeUpstreamTimeout) {
		t.Errorf("the fast route got %d answers while the slow one timed out %d times: slow requests held it up",
			stats.count("200"), stats.count(proxy.CodeUpstreamTimeout))
	}
	waitFor(t, "every slow upstream request to be cancelled", 10*time.Second, func() bool {
		return cancelled.Load() == started.Load()
	})
	waitInflightZero(t, e)
	t.Logf("%d requests: %v; %d slow upstream requests, all cancelled", stats.sent, stats.outcomes, started.Load())
}

// TestFaultCallerCancelReachesUpstream: a caller that gives up (its context
// is cancelled, the connection closes) cancels the request the gateway made
// upstream, before any timeout. TestSlowUpstreamIs504AndCallerCancelReachesUpstream
// covers the timeout itself.
func TestFaultCallerCancelReachesUpstream(t *testing.T) {
	arrived := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	})
	e := newEnv(t, envOptions{upstream: up, transport: proxy.TransportOptions{ResponseHeaderTimeout: 30 * time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.gateway.URL+"/api/v2/history/", nil)
	req.Header.Set("X-Test-Caller", "admin")
	errc := make(chan error, 1)
	go func() {
		resp, err := e.gateway.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller's request ended with %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled when the caller gave up")
	}
	waitInflightZero(t, e)
}
