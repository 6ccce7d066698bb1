package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
)

const (
	sigKey1 = "SignalK1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	sigKey2 = "SignalK2.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
)

// holdingUpstream is the stand-in, except that /api/v2/channels/ waits until
// release is closed: requests still in flight when the drain begins.
type holdingUpstream struct {
	si      *standin.Server
	held    atomic.Int32
	release chan struct{}
}

func (u *holdingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v2/channels/" {
		u.held.Add(1)
		<-u.release
	}
	u.si.ServeHTTP(w, r)
}

func writeProcessConfig(t *testing.T, upstream, extra, vault string) string {
	t.Helper()
	return writeSetup(t, upstream, "poll_interval = \"500ms\"\n[server]\nlisten = \"127.0.0.1:0\"\n"+extra+
		"[admin]\nlisten = \"127.0.0.1:0\"\n", vault)
}

// TestSIGTERMUnderLoadDropsNothing runs the binary under load from 8 callers
// with 4 slow requests in flight, and sends it SIGTERM. /readyz fails at
// once; the callers stop sending when they see it (as a load balancer does);
// requests keep being served during shutdown_delay; a second SIGTERM ends
// the delay, the listener closes
// and the slow requests, released only then, still complete. Not one request
// fails, and scgate exits 0.
func TestSIGTERMUnderLoadDropsNothing(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{sigKey1}, MaxRecorded: 100})
	if err != nil {
		t.Fatal(err)
	}
	up := &holdingUpstream{si: si, release: make(chan struct{})}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	released := false
	defer func() {
		if !released {
			close(up.release)
		}
	}()
	cfg := writeProcessConfig(t, upSrv.URL, "shutdown_delay = \"1h\"\nshutdown_timeout = \"20s\"\n",
		"[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \""+sigKey1+"\"\n")
	p := startScgate(t, buildScgate(t), cfg)

	stop := make(chan struct{})
	l := startLoad(8, stop, func(c *http.Client, w, i int) error {
		return expect(c, "GET", p.base+"/api/v2/history/?limit=5", "", http.StatusOK)
	})
	slow := make(chan error, 4)
	for range 4 {
		go func() { slow <- expect(http.DefaultClient, "GET", p.base+"/api/v2/channels/", "", http.StatusOK) }()
	}
	waitUntil(t, "the slow requests to reach the upstream", func() bool { return up.held.Load() == 4 })
	waitUntil(t, "some load", func() bool { return l.count() >= 1000 })

	p.signal(syscall.SIGTERM)
	waitUntil(t, "/readyz to fail", func() bool {
		code, _ := get(t, http.DefaultClient, p.admin+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	sentAtDrain := l.count()
	// shutdown_delay is an hour, so no machine is slow enough to outlast
	// it; a second SIGTERM ends it below.
	if code, body := get(t, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, p.base+"/api/v2/history/"); code != http.StatusOK {
		t.Fatalf("a new request during shutdown_delay: %d %s", code, body)
	}
	close(stop) // the load balancer has taken the pod out
	sent, failed, failures := l.result()
	p.signal(syscall.SIGTERM) // a second SIGTERM cuts the delay short
	waitUntil(t, "the listener to close after the second SIGTERM", p.refusing)
	close(up.release)
	released = true
	for range 4 {
		if err := <-slow; err != nil {
			t.Errorf("a request in flight at SIGTERM: %v", err)
		}
	}
	p.wait()
	if failed != 0 {
		t.Fatalf("%d of %d requests dropped: %v", failed, sent, failures)
	}
	if p.count("scgate stopped") != 1 {
		t.Fatal("no \"scgate stopped\" line")
	}
	t.Logf("%d requests (%d before /readyz failed) and 4 in flight through SIGTERM, 0 dropped", sent, sentAtDrain)
}

// TestSIGHUPStormUnderLoad sends the binary 100 SIGHUPs, one as soon as the
// previous reload began, while 8 callers send continuously. Every other
// reload also rotates the vault's key and changes the limits and the route
// policy of another caller. Not one request fails, every SIGHUP is a reload,
// and the broadcaster sees both keys.
func TestSIGHUPStormUnderLoad(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{sigKey1, sigKey2}, MaxRecorded: 0})
	if err != nil {
		t.Fatal(err)
	}
	upSrv := httptest.NewServer(si)
	defer upSrv.Close()
	vault := func(i int) string {
		key, nb := sigKey1, "2020-01-01T00:00:00Z"
		if i%4 == 1 {
			key, nb = sigKey2, "2021-01-01T00:00:00Z"
		}
		return fmt.Sprintf("[callers]\n\"svc\" = \"k\"\n\"other\" = \"k\"\n[[keys.k]]\nsecret = %q\nnot_before = %s\n", key, nb)
	}
	extra := func(i int) string {
		route := "/api/v2/history/"
		if i%4 == 1 {
			route = "/api/v2/channels/"
		}
		return fmt.Sprintf("[limits.callers.\"other\"]\nrate = %d.0\n[policy.sets]\nro = [\"GET %s\"]\n"+
			"[policy.callers]\n\"other\" = \"ro\"\n[identity]\n", i+1, route)
	}
	// writeSetup ends with [identity] static = "svc"; extra opens its own
	// [identity] table before it, so it is written by hand here.
	dir := t.TempDir()
	vaultPath, cfgPath := filepath.Join(dir, "keys.toml"), filepath.Join(dir, "config.toml")
	writeAll := func(i int) {
		replaceFile(t, vaultPath, vault(i))
		replaceFile(t, cfgPath, fmt.Sprintf("[upstream]\nurl = %q\n[vault]\nfile = \"keys.toml\"\n[server]\nlisten = \"127.0.0.1:0\"\n"+
			"shutdown_delay = \"0s\"\n[admin]\nlisten = \"127.0.0.1:0\"\n%sstatic = \"svc\"\n", upSrv.URL, extra(i)))
	}
	writeAll(0)
	p := startScgate(t, buildScgate(t), cfgPath)

	stop := make(chan struct{})
	l := startLoad(8, stop, func(c *http.Client, w, i int) error {
		if w%2 == 0 {
			return expect(c, "POST", p.base+"/api/v2/playlists/", `{"name":"storm","is_random":true,"server":1}`, http.StatusCreated)
		}
		return expect(c, "GET", p.base+"/api/v2/playlists/?server=1", "", http.StatusOK)
	})
	waitUntil(t, "some load", func() bool { return l.count() >= 100 })
	var changed int
	for i := 1; i <= 100; i++ {
		if i%2 == 1 {
			writeAll(i)
			changed++
		}
		p.signal(syscall.SIGHUP)
		waitUntil(t, fmt.Sprintf("reload %d to begin", i), func() bool { return p.count("SIGHUP: reloading") == i })
	}
	waitUntil(t, "the last reload to finish", func() bool {
		return p.count("limits reloaded") == changed && p.count("route policy reloaded") == changed
	})
	close(stop)
	sent, failed, failures := l.result()
	p.signal(syscall.SIGTERM)
	p.wait()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed during the SIGHUP storm: %v", failed, sent, failures)
	}
	if n := p.count("SIGHUP: reloading"); n != 100 {
		t.Fatalf("%d reloads for 100 SIGHUPs", n)
	}
	if strings.Contains(p.stderr(), "config file is now invalid") {
		t.Fatal("a reload read a half-written config")
	}
	seen := map[string]bool{}
	for _, r := range si.Requests() {
		for _, k := range r.KeyPrefixes {
			seen[k] = true
		}
	}
	if !seen[keyvault.Prefix(sigKey1)] || !seen[keyvault.Prefix(sigKey2)] || len(seen) != 2 {
		t.Fatalf("the broadcaster saw keys %v, want both rotated keys", seen)
	}
	t.Logf("%d requests through 100 SIGHUPs (%d with a changed vault, limits and policy), 0 failures", sent, changed)
}
