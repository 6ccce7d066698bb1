package tracetest

import (
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// stuckCollector accepts connections and never answers: a collector that
// hangs (the worst case: a dead one refuses at once).
func stuckCollector(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// Threat: a slow collector as a denial of service. With a collector that
// accepts and never answers, every request completes, none waits for the
// export (which takes export_timeout each time), and the spans that do not
// fit the queue are counted as dropped.
func TestStuckCollectorHoldsNoRequest(t *testing.T) {
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			const exportTimeout = 2 * time.Second
			_, addr, admin := gateway(t, standin(t), `[tracing]
enabled = true
endpoint = "http://`+stuckCollector(t)+`"
protocol = "`+proto+`"
insecure = true
max_queue_size = 16
batch_timeout = "20ms"
export_timeout = "`+exportTimeout.String()+`"
`)
			c := client("127.0.0.1")
			const requests = 200
			var slowest time.Duration
			start := time.Now()
			for range requests {
				t0 := time.Now()
				if resp := get(t, c, "http://"+addr+"/api/v2/playlists/", nil); resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				slowest = max(slowest, time.Since(t0))
			}
			total := time.Since(start)
			t.Logf("%d requests in %v, slowest %v", requests, total, slowest)
			// A request held by an export would take the export timeout.
			if slowest >= exportTimeout {
				t.Fatalf("a request took %v: it waited for the stuck collector", slowest)
			}
			// Each request ends two spans; the queue holds 16 and one
			// batch of 16 at most is being exported.
			re := regexp.MustCompile(`(?m)^scgate_trace_spans_dropped_total\{reason="queue_full"\} (\d+)`)
			var dropped int
			waitFor(t, "the dropped spans in /metrics", func() bool {
				resp, err := http.Get("http://" + admin + "/metrics")
				if err != nil {
					return false
				}
				m := re.FindStringSubmatch(readAll(resp.Body))
				resp.Body.Close()
				if m != nil {
					dropped, _ = strconv.Atoi(m[1])
				}
				return dropped >= 2*requests-64
			})
		})
	}
}
