package proxy_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// pageWith is a paginated answer with its links on linkOrigin, a result
// holding URLs on itemOrigin, and padding to make it at least size bytes.
func pageWith(linkOrigin, itemOrigin string, size int) string {
	return `{"count":3,"next":"` + linkOrigin + `/api/v2/history/?offset=2","previous":"` + linkOrigin + `/api/v2/history/",` +
		`"results":[{"next":"` + itemOrigin + `/inner","img_url":"` + itemOrigin + `/media/a.jpg","pad":"` + strings.Repeat("p", size) + `"}]}`
}

// TestPageLinksOnlyOnPaginatedRoutes: the answers of the list endpoints that
// paginate (GET history, channels, authlisteners) get their top-level links
// on the gateway, a small one keeping an exact Content-Length; every other
// answer, however it looks, passes byte for byte with its own Content-Length,
// so it is never read whole or held.
func TestPageLinksOnlyOnPaginatedRoutes(t *testing.T) {
	var upOrigin string
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, pageWith(upOrigin, upOrigin, 10))
	})
	e := newEnv(t, envOptions{upstream: up})
	upOrigin = e.upstream.URL
	for _, c := range []struct {
		method, path string
		rewritten    bool
	}{
		{"GET", "/api/v2/history/?server=1", true},
		{"GET", "/api/v2/channels/", true},
		{"GET", "/api/v2/authlisteners/", true},
		{"POST", "/api/v2/channels/", false},
		{"GET", "/api/v2/playlists/", false},
		{"GET", "/api/v2/playlists/7/", false},
		{"GET", "/api/v2/playlists/7/tracks/", false},
		{"GET", "/api/v2/grid/", false},
		{"GET", "/api/v2/history", false},
		{"GET", "/elsewhere/", false},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp, body := e.do(c.method, c.path, "admin", nil, nil)
			want := pageWith(upOrigin, upOrigin, 10)
			if c.rewritten {
				want = pageWith(e.gateway.URL, upOrigin, 10)
			}
			if resp.StatusCode != http.StatusOK || body != want {
				t.Fatalf("%d\n got %s\nwant %s", resp.StatusCode, body, want)
			}
			if resp.ContentLength != int64(len(want)) {
				t.Fatalf("Content-Length %d, want %d", resp.ContentLength, len(want))
			}
		})
	}
}

// TestLargePageStreams: a paginated answer larger than the window reaches the
// caller while the broadcaster is still sending it (the gateway never holds
// it whole), its links rewritten, without the broadcaster's Content-Length
// (the length changed) and otherwise byte for byte.
func TestLargePageStreams(t *testing.T) {
	var upOrigin string
	var page []byte
	release := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		half := len(page) / 2
		_, _ = w.Write(page[:half])
		w.(http.Flusher).Flush()
		select { // the second half only once the caller has the first
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(page[half:])
	})
	e := newEnv(t, envOptions{upstream: up})
	upOrigin = e.upstream.URL
	page = []byte(pageWith(upOrigin, upOrigin, 1<<20))
	want := []byte(pageWith(e.gateway.URL, upOrigin, 1<<20))
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.gateway.URL+"/api/v2/history/", nil)
	req.Header.Set("X-Test-Caller", "admin")
	resp, err := e.gateway.Client().Do(req)
	if err != nil {
		t.Fatalf("no answer while the broadcaster was half-way (the gateway held it): %v", err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("Content-Length %d %q: the rewritten body's length is not the broadcaster's", resp.ContentLength, resp.Header.Get("Content-Length"))
	}
	first := make([]byte, 256<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first half did not arrive while the broadcaster waited: %v", err)
	}
	close(release)
	released = true
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); !bytes.Equal(got, want) {
		t.Fatalf("the answer differs: %d bytes, want %d; starts %.200s", len(got), len(want), got)
	}
}

// TestCompressedPageAnswerPassesUntouched: a compressed answer (the gateway
// asks for none on paginated routes, but a broadcaster may send one anyway)
// is not decompressed, rewritten or re-framed.
func TestCompressedPageAnswerPassesUntouched(t *testing.T) {
	var gz bytes.Buffer
	var upOrigin string
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "" {
			t.Errorf("the gateway asked for %q on a paginated route", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(gz.Len()))
		_, _ = w.Write(gz.Bytes())
	})
	e := newEnv(t, envOptions{upstream: up})
	upOrigin = e.upstream.URL
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, pageWith(upOrigin, upOrigin, 100))
	_ = zw.Close()
	req, _ := http.NewRequest("GET", e.gateway.URL+"/api/v2/history/", nil)
	req.Header.Set("X-Test-Caller", "admin")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(got, gz.Bytes()) || resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength != int64(gz.Len()) {
		t.Fatalf("the compressed answer changed: %d bytes (%q, length %d), sent %d", len(got), resp.Header.Get("Content-Encoding"), resp.ContentLength, gz.Len())
	}
}

// TestBufferBudget: rewrites take their window from the budget and give it
// back (many answers one after another all fit a budget of a few); with the
// budget spent, an answer passes unchanged, and the fallback is counted and
// named in the access log and a warning.
func TestBufferBudget(t *testing.T) {
	var upOrigin string
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, pageWith(upOrigin, upOrigin, max(size, 10)))
	})
	t.Run("released", func(t *testing.T) {
		e := newEnv(t, envOptions{upstream: up, bufferBudget: 256 << 10})
		upOrigin = e.upstream.URL
		for i := range 20 {
			size := 10 // small answers are collected, large ones stream
			if i%2 == 1 {
				size = 100 << 10
			}
			if _, body := e.do("GET", "/api/v2/history/?size="+strconv.Itoa(size), "admin", nil, nil); body != pageWith(e.gateway.URL, upOrigin, size) {
				t.Fatalf("request %d not rewritten: the budget was not given back: %.200s", i, body)
			}
		}
		if n := testutil.ToFloat64(e.metrics.BufferFallbacks.WithLabelValues("rewrite")); n != 0 {
			t.Fatalf("%v fallbacks", n)
		}
	})
	t.Run("spent", func(t *testing.T) {
		core, logs := observer.New(zapcore.InfoLevel)
		e := newEnv(t, envOptions{upstream: up, bufferBudget: 1024, logger: zap.New(core)})
		upOrigin = e.upstream.URL
		for range 2 {
			if _, body := e.do("GET", "/api/v2/history/", "admin", nil, nil); body != pageWith(upOrigin, upOrigin, 10) {
				t.Fatalf("with the budget spent the answer changed: %s", body)
			}
		}
		if n := testutil.ToFloat64(e.metrics.BufferFallbacks.WithLabelValues("rewrite")); n != 2 {
			t.Fatalf("scgate_buffer_budget_fallbacks_total{use=rewrite} = %v, want 2", n)
		}
		access := logs.FilterMessage("request").FilterField(zap.String("buffer_fallback", "rewrite")).Len()
		warned := logs.FilterMessageSnippet("the buffer budget (server.max_buffered_bytes) is spent").Len()
		if access != 2 || warned != 1 {
			t.Fatalf("%d access-log lines name the fallback (want 2), %d warnings (want 1, at most one a minute)", access, warned)
		}
	})
}

// TestBufferBudgetSpentNoReplay: a request body that the budget cannot hold
// is streamed and not kept, so a refusal for its key reaches the caller
// instead of a retry; counted as a replay fallback. With room, the same
// request is retried with the standby key.
func TestBufferBudgetSpentNoReplay(t *testing.T) {
	for _, c := range []struct {
		budget int64
		want   int
	}{{1 << 20, http.StatusCreated}, {16, http.StatusForbidden}} {
		t.Run(fmt.Sprint(c.budget), func(t *testing.T) {
			si, err := standin.New(standin.Options{Keys: []string{keyNew}})
			if err != nil {
				t.Fatal(err)
			}
			rej, err := keyvault.NewRejections(keyvault.RejectionsOptions{CoolDown: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, envOptions{upstream: si, vault: fixedVault{parseVault(t, failoverVault)}, rejections: rej, bufferBudget: c.budget})
			resp, body := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(`{"name":"Kept","is_random":false,"server":1}`),
				http.Header{"Content-Type": {"application/json"}})
			if resp.StatusCode != c.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, c.want)
			}
			fallbacks := testutil.ToFloat64(e.metrics.BufferFallbacks.WithLabelValues("replay"))
			if (c.want == http.StatusForbidden) != (fallbacks == 1) {
				t.Fatalf("scgate_buffer_budget_fallbacks_total{use=replay} = %v", fallbacks)
			}
		})
	}
}

// TestSlowReadersHoldLittleHeap: 64 callers ask for 4 MiB paginated answers
// and stop reading after the first bytes. The gateway's live heap (measured
// in this process with runtime/metrics) grows by a window per answer, not by
// the answers: under 24 MiB where holding them would take 256 MiB or more.
// Each caller's bytes so far are exactly the rewritten answer's. (The
// gateway's sockets have small send buffers, so that a stalled caller stalls
// the gateway after a few kilobytes, as a real one does once the kernel's
// buffers are full; TestSlowReadersOfLargePagesKeepRSSSmall in cmd/scgate
// reads the answers whole through the built binary.)
func TestSlowReadersHoldLittleHeap(t *testing.T) {
	const (
		callers = 64
		size    = 4<<20 - 4096
		limit   = 24 << 20
	)
	var page []byte
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	}))
	upOrigin := "http://" + up.Listener.Addr().String()
	page = []byte(pageWith(upOrigin, upOrigin, size))
	up.Start()
	defer up.Close()
	u, _ := url.Parse(up.URL)
	transport := proxy.NewTransport(proxy.TransportOptions{})
	defer transport.CloseIdleConnections()
	h, err := proxy.New(proxy.Options{Upstream: u, Transport: transport, Identity: headerIdentity{}, Vault: fixedVault{parseVault(t, testVault)}})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewUnstartedServer(h)
	gw.Listener = smallSendBuffers{gw.Listener}
	gw.Start()
	defer gw.Close()
	want := []byte(pageWith(gw.URL, upOrigin, size))

	before := liveHeap()
	var (
		mu    sync.Mutex
		conns []net.Conn // closed at the end, so that no caller waits on
	)
	var started atomic.Int32
	proceed := make(chan struct{})
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			conn, err := net.Dial("tcp", gw.Listener.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			_ = conn.(*net.TCPConn).SetReadBuffer(8 << 10)
			_, _ = io.WriteString(conn, "GET /api/v2/history/ HTTP/1.1\r\nHost: "+gw.Listener.Addr().String()+"\r\nX-Test-Caller: admin\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				errs <- err
				return
			}
			first := make([]byte, 8<<10)
			if _, err := io.ReadFull(resp.Body, first); err != nil || !bytes.Equal(first, want[:len(first)]) {
				errs <- fmt.Errorf("the answer starts %.100q (%v), want %.100q", first, err, want)
				return
			}
			started.Add(1)
			<-proceed
		})
	}
	defer func() {
		close(proceed)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	// Polled rather than waited for: a gateway that holds the answers may
	// take long to send their first bytes, and its heap tells why.
	deadline := time.Now().Add(30 * time.Second)
	for started.Load()+int32(len(errs)) < callers {
		if grown := liveHeap() - before; grown > limit {
			t.Fatalf("the live heap grew by %.1f MiB with %d answers in flight (%d started); the bound is %d MiB",
				float64(grown)/(1<<20), callers, started.Load(), limit>>20)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers had the start of their answer within 30 s", started.Load(), callers)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	grown := liveHeap() - before
	t.Logf("live heap grew by %.1f MiB with %d stalled callers of %d-byte answers", float64(grown)/(1<<20), callers, len(page))
	if grown > limit {
		t.Fatalf("the live heap grew by %.1f MiB with %d slow readers; the bound is %d MiB", float64(grown)/(1<<20), callers, limit>>20)
	}
}

// liveHeap is the heap still in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// smallSendBuffers gives accepted connections a small kernel send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}
