package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

// BenchmarkReloadLatency measures, with the poll fallback off, the time from
// the write of a vault file holding a new key to the first caller request
// the broadcaster receives with that key, through a real gateway:
//
//	go test -run '^$' -bench ReloadLatency -benchtime 200x ./proxy/
//
// It reports the median and the 99th percentile of the iterations (p50-ms,
// p99-ms) for a file replaced by rename (what editors and `scgate vault
// encrypt` do; seen through fsnotify) and for a Kubernetes Secret volume's
// "..data" symlink swap.
func BenchmarkReloadLatency(b *testing.B) {
	b.Run("fsnotify-rename", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "keys.toml")
		vaulttest.WriteAtomic(b, path, latencyVault(0))
		benchReload(b, path, func(i int) { vaulttest.WriteAtomic(b, path, latencyVault(i)) })
	})
	b.Run("k8s-symlink-swap", func(b *testing.B) {
		vol := vaulttest.NewSecretVolume(b, map[string]string{"keys.toml": latencyVault(0)})
		benchReload(b, vol.Path("keys.toml"), func(i int) { vol.Update(map[string]string{"keys.toml": latencyVault(i)}) })
	})
}

func latencyKey(i int) string { return fmt.Sprintf("Lat%05d.FAKEfakeFAKEfakeFAKEfakeFAKEfake", i) }

func latencyVault(i int) string {
	return "[callers]\n\"admin\" = \"admin\"\n[[keys.admin]]\nsecret = \"" + latencyKey(i) + "\"\n"
}

func benchReload(b *testing.B, path string, write func(i int)) {
	// The upstream tells which key it received, so the client sees the
	// moment the new key is served without any shared state.
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Key", keyvault.Prefix(r.Header.Get("SC-API-KEY")))
	})
	core, logs := observer.New(zapcore.DebugLevel)
	w, err := keyvault.NewWatcher(keyvault.WatcherOptions{Path: path, PollInterval: -1, Logger: zap.New(core)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e := newEnv(b, envOptions{upstream: up, vault: w})
	client := e.gateway.Client()
	seen := func() string {
		req, _ := http.NewRequest("GET", e.gateway.URL+"/api/v2/history/", nil)
		req.Header.Set("X-Test-Caller", "admin")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Seen-Key")
	}
	if got := seen(); got != keyvault.Prefix(latencyKey(0)) {
		b.Fatalf("served %s before any change", got)
	}
	// Run's first check comes after its watches are in place: from then on,
	// only notifications can bring a change in (polling is off).
	vaulttest.Eventually(b, 5*time.Second, "the watcher to start", func() bool {
		return logs.FilterMessage("vault checked; unchanged").Len() > 0
	})

	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		want := keyvault.Prefix(latencyKey(i))
		start := time.Now()
		write(i)
		deadline := start.Add(10 * time.Second)
		for seen() != want {
			if time.Now().After(deadline) {
				b.Fatalf("iteration %d: the new key was not served within 10s", i)
			}
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(ms(percentile(latencies, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(latencies, 99)), "p99-ms")
	b.ReportMetric(ms(latencies[len(latencies)-1]), "max-ms")
}

// percentile returns the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
