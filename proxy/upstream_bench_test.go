package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
)

// BenchmarkUpstreamClient compares the upstream clients through real
// loopback sockets: a keep-alive load client, the gateway and a fast
// upstream answering 1 KB of JSON, all in this process. "direct" is the load
// client against the upstream alone; the gateway's own CPU per request is a
// variant's cpu-µs/op minus direct's. With -count N the three run
// interleaved (direct, net/http, sync, direct, ...), so that other load on
// the machine falls on all of them alike.
//
//	go test -run '^$' -bench UpstreamClient -benchmem -cpu 2 -count 6 ./proxy/
func BenchmarkUpstreamClient(b *testing.B) {
	page := bytes.Repeat([]byte(`{"id":1,"name":"playlist"},`), 40)
	page = append(append([]byte{'['}, page[:len(page)-1]...), ']')
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header["Sc-Api-Key"]) != 1 {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	for _, client := range []string{"direct", proxy.ClientNetHTTP, proxy.ClientSync} {
		b.Run(client, func(b *testing.B) {
			target, hdr := up.URL, http.Header{"Sc-Api-Key": {keyAdmin}}
			if client != "direct" {
				tr, err := proxy.NewUpstreamTransport(proxy.TransportOptions{Client: client})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.CloseIdleConnections()
				h, err := proxy.New(proxy.Options{Upstream: upURL, Transport: tr, Identity: headerIdentity{}, Vault: fixedVault{parseVault(b, testVault)}})
				if err != nil {
					b.Fatal(err)
				}
				gw := httptest.NewServer(h)
				defer gw.Close()
				target, hdr = gw.URL, http.Header{"X-Test-Caller": {"admin"}}
			}
			loadClient(b, target+"/api/v2/playlists/?server=1", hdr)
		})
	}
}

// loadClient sends b.N GETs over 32 keep-alive connections and reports the
// process's CPU time per request.
func loadClient(b *testing.B, target string, hdr http.Header) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	b.SetParallelism(16) // 32 goroutines with -cpu 2
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		req.Header = hdr.Clone()
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
