package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/scgate/scgate/internal/standin"
)

// The soak: the real binary under mixed load for SCGATE_SOAK_DURATION
// (default 30s; the documented full run is 5m), at SCGATE_SOAK_RATE requests
// per second in all (default 500, paced so that the soak does not starve the
// packages tested beside it; 0: as fast as the workers go), with a key
// rotation every second and a SIGHUP every 10 seconds. It reports requests,
// failures (must be 0), and the gateway's RSS and goroutines (from its own
// /metrics) at the start, after a warm-up, and at the end; they must be flat.
// With SCGATE_SOAK_REPORT set, the report is also written to that file.
//
//	SCGATE_SOAK_DURATION=5m go test -run '^TestSoak$' -count=1 -v -timeout 30m ./cmd/scgate

const soakCallers = `
"sync" = "sync"
"stats" = "stats"
"batch" = "batch"
`

func soakKey(name string, i int) string {
	return fmt.Sprintf("Sk%s%04d.FAKEfakeFAKEfakeFAKEfakeFAKEfake", name[:2], i%10000)
}

// soakVault lists versions i-1 and i of each key; version i becomes valid at
// base+i seconds, so it is the active one.
func soakVault(base time.Time, i int) string {
	var b strings.Builder
	b.WriteString("[callers]" + soakCallers)
	for _, k := range []string{"sync", "stats", "batch"} {
		for v := max(0, i-1); v <= i; v++ {
			fmt.Fprintf(&b, "\n[[keys.%s]]\nsecret = %q\nnot_before = %s\n", k, soakKey(k, v),
				base.Add(time.Duration(v)*time.Second).UTC().Format(time.RFC3339))
		}
	}
	return b.String()
}

// soakAccepted is what the broadcaster accepts while version i is the
// newest: the last five, so a request that took its vault snapshot just
// before a swap still carries an accepted key.
func soakAccepted(i int) []string {
	var keys []string
	for v := max(0, i-4); v <= i; v++ {
		for _, k := range []string{"sync", "stats", "batch"} {
			keys = append(keys, soakKey(k, v))
		}
	}
	return keys
}

// sample is one reading of the gateway's own metrics.
type sample struct {
	rss, heap, goroutines float64
}

func readSample(t *testing.T, admin string) sample {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "process_resident_memory_bytes":
			s.rss = f
		case "go_memstats_heap_inuse_bytes":
			s.heap = f
		case "go_goroutines":
			s.goroutines = f
		}
	}
	if s.rss == 0 || s.goroutines == 0 {
		t.Fatal("/metrics lacks process_resident_memory_bytes or go_goroutines")
	}
	return s
}

// soakClient sends from a loopback source address (the caller's identity)
// over keep-alive connections.
func soakClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}, Timeout: 30 * time.Second}
}

func TestSoak(t *testing.T) {
	duration := 30 * time.Second
	if v := os.Getenv("SCGATE_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("SCGATE_SOAK_DURATION=%q: give a duration of at least 10s, e.g. 5m", v)
		}
		duration = d
	}
	warmup := min(duration/6, 10*time.Second)
	rate := 500.0
	if v := os.Getenv("SCGATE_SOAK_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 {
			t.Fatalf("SCGATE_SOAK_RATE=%q: give requests per second, or 0 for no pacing", v)
		}
		rate = r
	}

	si, err := standin.New(standin.Options{Keys: soakAccepted(0), MaxRecorded: 1000})
	if err != nil {
		t.Fatal(err)
	}
	upSrv := httptest.NewServer(si)
	defer upSrv.Close()
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	vaultPath, cfgPath := filepath.Join(dir, "keys.toml"), filepath.Join(dir, "config.toml")
	replaceFile(t, vaultPath, soakVault(base, 0))
	replaceFile(t, cfgPath, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity.cidr]
"127.0.0.1/32" = "sync"
"127.0.0.2/32" = "stats"
"127.0.0.3/32" = "batch"
[limits.callers."batch"]
rate = 100.0
burst = 10
mode = "wait"
max_wait = "10s"
[policy.sets]
ro = ["GET /api/v2/**"]
[policy.callers]
"stats" = "ro"
`, upSrv.URL))
	p := startScgate(t, buildScgate(t), cfgPath)

	var outcomes sync.Map // "caller route status" -> *atomic.Int64
	note := func(what string) {
		v, _ := outcomes.LoadOrStore(what, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	stop := make(chan struct{})
	type worker struct {
		ip  string
		one func(c *http.Client, i int) error
	}
	post := `{"name":"soak","is_random":false,"server":2}` // server 2: the list of server 1 stays short
	workers := []worker{}
	for range 4 {
		workers = append(workers, worker{"127.0.0.1", func(c *http.Client, i int) error {
			switch i % 10 {
			case 0:
				note("sync POST playlists 201")
				return expect(c, "POST", p.base+"/api/v2/playlists/", post, http.StatusCreated)
			case 1, 2:
				note("sync GET history+next 200")
				return followNext(c, p.base, "/api/v2/history/?limit=20&server=1")
			case 3:
				note("sync GET playlists/1 200")
				return expect(c, "GET", p.base+"/api/v2/playlists/1/", "", http.StatusOK)
			case 4, 5:
				note("sync GET channels 200")
				return expect(c, "GET", p.base+"/api/v2/channels/?server=1", "", http.StatusOK)
			default:
				note("sync GET playlists 200")
				return expect(c, "GET", p.base+"/api/v2/playlists/?server=1", "", http.StatusOK)
			}
		}})
	}
	for range 2 {
		workers = append(workers, worker{"127.0.0.2", func(c *http.Client, i int) error {
			if i%20 == 0 {
				note("stats POST playlists 403")
				return expect(c, "POST", p.base+"/api/v2/playlists/", post, http.StatusForbidden)
			}
			note("stats GET history 200")
			return expect(c, "GET", p.base+"/api/v2/history/?limit=50&server=1", "", http.StatusOK)
		}})
	}
	for range 2 {
		workers = append(workers, worker{"127.0.0.3", func(c *http.Client, i int) error {
			note("batch GET grid 200 (rate-limited, waits)")
			return expect(c, "GET", p.base+"/api/v2/grid/?server=1", "", http.StatusOK)
		}})
	}
	workers = append(workers, worker{"127.0.0.9", func(c *http.Client, i int) error {
		note("stranger GET history 401")
		return expect(c, "GET", p.base+"/api/v2/history/", "", http.StatusUnauthorized)
	}})

	var sent, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			c := soakClient(w.ip)
			defer c.CloseIdleConnections()
			var pace <-chan time.Time // nil: no pacing
			if rate > 0 {
				tick := time.NewTicker(time.Duration(float64(len(workers)) / rate * float64(time.Second)))
				defer tick.Stop()
				pace = tick.C
			}
			for i := range 100000000 {
				if pace != nil {
					select {
					case <-stop:
						return
					case <-pace:
					}
				}
				select {
				case <-stop:
					return
				default:
				}
				err := w.one(c, i)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					failMu.Lock()
					if len(failures) < 10 {
						failures = append(failures, err.Error())
					}
					failMu.Unlock()
				}
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	// Rotations every second, a SIGHUP every ten; samples after the warm-up
	// and at the end.
	start := time.Now()
	first := readSample(t, p.admin)
	var warm, peak sample
	rotations, reloads := 0, 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			rotations++
			si.SetKeys(soakAccepted(rotations))
			replaceFile(t, vaultPath, soakVault(base, rotations))
			if rotations%10 == 0 {
				p.signal(syscall.SIGHUP)
				reloads++
			}
			s := readSample(t, p.admin)
			if warm.rss == 0 && time.Since(start) >= warmup {
				warm = s
			}
			peak = sample{max(peak.rss, s.rss), max(peak.heap, s.heap), max(peak.goroutines, s.goroutines)}
		}
		select {
		case <-p.done:
			t.Fatalf("scgate exited during the soak: %v\n%s", p.err, p.stderr())
		default:
		}
	}
	end := readSample(t, p.admin)
	stopLoad()
	elapsed := time.Since(start)
	p.signal(syscall.SIGTERM)
	p.wait()

	var report strings.Builder
	pacing := "unpaced"
	if rate > 0 {
		pacing = fmt.Sprintf("paced at %.0f/s", rate)
	}
	fmt.Fprintf(&report, "soak: %v of mixed load from %d workers, %s (binary built with race detector: %v)\n",
		elapsed.Round(time.Second), len(workers), pacing, raceEnabled)
	fmt.Fprintf(&report, "requests %d (%.0f/s; %d HTTP requests in the gateway's access log, a followed next link being a second one), failures %d, key rotations %d, SIGHUP reloads %d\n",
		sent.Load(), float64(sent.Load())/elapsed.Seconds(), p.accessLines, failed.Load(), rotations, reloads)
	fmt.Fprintf(&report, "gateway RSS: start %.1f MiB, after %v warm-up %.1f MiB, end %.1f MiB, peak %.1f MiB\n",
		first.rss/(1<<20), warmup, warm.rss/(1<<20), end.rss/(1<<20), peak.rss/(1<<20))
	fmt.Fprintf(&report, "gateway heap in use: after warm-up %.1f MiB, end %.1f MiB\n", warm.heap/(1<<20), end.heap/(1<<20))
	fmt.Fprintf(&report, "gateway goroutines: start %.0f, after warm-up %.0f, end %.0f, peak %.0f\n",
		first.goroutines, warm.goroutines, end.goroutines, peak.goroutines)
	var lines []string
	outcomes.Range(func(k, v any) bool {
		lines = append(lines, fmt.Sprintf("  %-45s %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	sortStrings(lines)
	report.WriteString(strings.Join(lines, "\n") + "\n")
	t.Log("\n" + report.String())
	if path := os.Getenv("SCGATE_SOAK_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report.String()), 0o644); err != nil {
			t.Errorf("SCGATE_SOAK_REPORT: %v", err)
		}
	}

	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed; first: %v", failed.Load(), sent.Load(), failures)
	}
	if p.accessLines < int(sent.Load())*9/10 {
		t.Errorf("%d access-log lines for %d requests", p.accessLines, sent.Load())
	}
	// Flat: what the warm-up set up (connections, pools, buckets) stays; a
	// leak of a goroutine per request or per rotation would add thousands.
	if end.goroutines > warm.goroutines*1.1+10 {
		t.Errorf("goroutines grew from %.0f to %.0f", warm.goroutines, end.goroutines)
	}
	if end.rss > warm.rss*1.5+16<<20 {
		t.Errorf("RSS grew from %.1f MiB to %.1f MiB", warm.rss/(1<<20), end.rss/(1<<20))
	}
}

// followNext gets a history page and then the page its next link names,
// which must point at the gateway.
func followNext(c *http.Client, base, path string) error {
	resp, err := c.Get(base + path)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %v %.200s", path, resp.StatusCode, err, b)
	}
	var page struct {
		Next *string `json:"next"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return fmt.Errorf("GET %s: %v", path, err)
	}
	if page.Next == nil {
		return nil
	}
	if !strings.HasPrefix(*page.Next, base+"/api/v2/history/") {
		return fmt.Errorf("next link %q does not point at the gateway", *page.Next)
	}
	return expect(c, "GET", *page.Next, "", http.StatusOK)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
