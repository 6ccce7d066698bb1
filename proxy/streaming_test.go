package proxy_test

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

const bigBody = 100 << 20 // 100 MB

// pattern is an endless, cheap, non-constant byte stream.
type pattern struct{ n byte }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.n
		p.n = p.n*31 + 7
	}
	return len(b), nil
}

// peakHeap samples the heap until stop is closed and returns the largest value.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func TestHundredMegabytesStreamBothWaysWithoutBuffering(t *testing.T) {
	var upReceived atomic.Int64
	var upSum [32]byte
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			upReceived.Store(n)
			copy(upSum[:], h.Sum(nil))
			w.WriteHeader(http.StatusCreated)
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.CopyN(w, &pattern{}, bigBody)
		}
	})
	e := newEnv(t, envOptions{upstream: up, maxBody: 2 * bigBody})

	runtime.GC()
	stop := make(chan struct{})
	peak := peakHeap(stop)

	// Upload, chunked, so nothing knows the size in advance.
	req, _ := http.NewRequestWithContext(context.Background(), "POST", e.gateway.URL+"/api/v2/playlists/1/add_recording/",
		io.NopCloser(io.LimitReader(&pattern{}, bigBody)))
	req.Header.Set("X-Test-Caller", "admin")
	resp, err := e.gateway.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantSum := sha256.New()
	_, _ = io.CopyN(wantSum, &pattern{}, bigBody)
	if resp.StatusCode != http.StatusCreated || upReceived.Load() != bigBody || [32]byte(wantSum.Sum(nil)) != upSum {
		t.Fatalf("upload: status %d, upstream got %d bytes (sum match %v)", resp.StatusCode, upReceived.Load(),
			[32]byte(wantSum.Sum(nil)) == upSum)
	}

	// Download.
	req, _ = http.NewRequestWithContext(context.Background(), "GET", e.gateway.URL+"/api/v2/playlists/1/excel/", nil)
	req.Header.Set("X-Test-Caller", "admin")
	resp, err = e.gateway.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != bigBody || [32]byte(h.Sum(nil)) != [32]byte(wantSum.Sum(nil)) {
		t.Fatalf("download: %d bytes, err %v", n, err)
	}

	close(stop)
	if p := <-peak; p > 40<<20 {
		t.Fatalf("heap peaked at %d MiB while streaming 100 MB: something buffers whole bodies", p>>20)
	} else {
		t.Logf("heap peak while streaming 2 x 100 MB: %d MiB", p>>20)
	}
}
