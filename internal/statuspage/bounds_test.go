package statuspage

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bigVault has n callers over n/10 keys of two versions each.
func bigVault(n int) string {
	var b strings.Builder
	b.WriteString("[callers]\n")
	for i := range n {
		fmt.Fprintf(&b, "\"spiffe://prod.example/ns/radio/sa/caller-%05d\" = \"key-%04d\"\n", i, i/10)
	}
	for k := range n / 10 {
		fmt.Fprintf(&b, "[[keys.key-%04d]]\nsecret = \"a%07d.secretpartone\"\nexpires = 2026-12-15T00:00:00Z\n", k, k)
		fmt.Fprintf(&b, "[[keys.key-%04d]]\nsecret = \"b%07d.secretparttwo\"\nnot_before = 2026-12-01T00:00:00Z\n", k, k)
	}
	return b.String()
}

// maxPageBytes bounds one page of callers, whatever the vault: MaxLimit
// callers at about 4 KB each, plus the fixed parts.
const maxPageBytes = 1 << 20

// Threat: denial of service through the paging parameters. With 10,000
// callers, the largest limit anyone can ask for still gives a bounded page
// in bounded time, and nonsense parameters are refused without work.
func TestStatusTenThousandCallers(t *testing.T) {
	f := newFixture(t, bigVault(10000))
	for _, path := range []string{"/status", "/status.json"} {
		for _, q := range []string{"", "?limit=1000000", "?limit=200&offset=9900", "?q=caller-09&limit=999999"} {
			start := time.Now()
			resp, body := get(t, f.srv.URL+path+q)
			took := time.Since(start)
			if resp.StatusCode != 200 {
				t.Fatalf("%s%s: status %d", path, q, resp.StatusCode)
			}
			// Generous for a loaded 2-core machine under -race; a page
			// that walked every caller's limiter and timeline would
			// still be far slower.
			if took > 5*time.Second {
				t.Errorf("%s%s took %v", path, q, took)
			}
			if len(body) > maxPageBytes {
				t.Errorf("%s%s is %d bytes, over %d", path, q, len(body), maxPageBytes)
			}
			t.Logf("%s%s: %d bytes in %v", path, q, len(body), took)
		}
	}
	q, err := ParseQuery(url.Values{"limit": {"1000000"}})
	if err != nil || q.Limit != MaxLimit {
		t.Errorf("limit=1000000 parsed as %+v, %v; want MaxLimit", q, err)
	}
	st := f.page.Snapshot(context.Background(), q)
	if st.Callers.Matched != 10000 || len(st.Callers.Items) != MaxLimit || st.Summary.KeysWarning != 1000 || len(st.Summary.Attention) != maxAttention {
		t.Errorf("matched %d, items %d, summary %+v", st.Callers.Matched, len(st.Callers.Items), st.Summary.KeysWarning)
	}
}

func TestStatusRefusesBadParameters(t *testing.T) {
	f := newFixture(t, stateVault)
	for _, q := range []string{"limit=-1", "offset=-5", "limit=abc", "offset=1e9", "q=" + strings.Repeat("a", MaxQueryLen+1)} {
		for _, path := range []string{"/status", "/status.json"} {
			resp, body := get(t, f.srv.URL+path+"?"+q)
			if resp.StatusCode != http.StatusBadRequest || len(body) > 200 {
				t.Errorf("%s?%.40s: status %d, %d bytes; want a short 400", path, q, resp.StatusCode, len(body))
			}
		}
	}
	// An offset past the end is an empty page, not an error.
	resp, body := get(t, f.srv.URL+"/status.json?offset=99999999")
	if resp.StatusCode != 200 || !strings.Contains(body, `"items":[]`) {
		t.Errorf("offset past the end: %d %.200s", resp.StatusCode, body)
	}
}

func TestProberReachability(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	var dials atomic.Int32
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &Prober{Now: func() time.Time { return clock }, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	targets := []PanelTarget{
		{Name: "up", Origin: &url.URL{Scheme: "https", Host: open.Addr().String()}},
		{Name: "down", Origin: &url.URL{Scheme: "https", Host: closedAddr}},
	}
	got := p.Check(context.Background(), targets)
	if !got[0].Reachable || got[1].Reachable || got[1].Error == "" || got[0].Origin != "https://"+open.Addr().String() {
		t.Errorf("got %+v", got)
	}
	// Threat: the page as a way to make scgate flood a panel. However
	// often it is loaded, a panel is dialled once per DefaultProbeEvery.
	for range 50 {
		p.Check(context.Background(), targets)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d dials for 51 page loads within the probe interval; want 2", n)
	}
	clock = clock.Add(DefaultProbeEvery)
	p.Check(context.Background(), targets)
	if n := dials.Load(); n != 4 {
		t.Errorf("%d dials after the interval; want 4", n)
	}
}
