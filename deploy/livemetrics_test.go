package deploy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scgate/scgate/deploy/internal/scgatebin"
)

// standinKey is the (fake) key the stand-in broadcaster accepts.
const standinKey = "LiveTst1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

// process is a child scgate with its output read line by line.
type process struct {
	cmd   *exec.Cmd
	lines chan string
}

// start runs scgate with args and delivers every line of stream (stdout or
// stderr) on p.lines. The process is stopped with SIGTERM at cleanup.
func start(t *testing.T, stream string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(scgateBinary, args...)
	var r io.ReadCloser
	var err error
	if stream == "stdout" {
		r, err = cmd.StdoutPipe()
	} else {
		r, err = cmd.StderrPipe()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, lines: make(chan string, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads any more; drop
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
		_ = cmd.Wait()
	})
	return p
}

// await returns the first line that match accepts, failing after a deadline.
func (p *process) await(t *testing.T, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case line := <-p.lines:
			if match(line) {
				return line
			}
		case <-deadline.C:
			t.Fatalf("no %s from %s within 30s", what, p.cmd.Args)
		}
	}
}

var standinAddr = regexp.MustCompile(`stand-in broadcaster on http://([^/]+)/`)

// liveMetricNames runs a stand-in broadcaster and a real gateway (TLS from
// files, a client CA, a vault with an expiring key, a tight rate limit),
// sends requests that make every family it can produce appear (a success,
// a caller without a key, a rate-limited one, a vault reload), scrapes
// /metrics and returns every sample name in it (histograms expanded to
// _bucket, _sum and _count).
func liveMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	si := start(t, "stdout", "standin", "--listen", "127.0.0.1:0", "--key", standinKey)
	upstream := standinAddr.FindStringSubmatch(si.await(t, "stand-in address", standinAddr.MatchString))[1]

	pki := newTestPKI(t)
	writeFile(t, filepath.Join(dir, "tls.crt"), pki.cert)
	writeFile(t, filepath.Join(dir, "tls.key"), pki.key)
	writeFile(t, filepath.Join(dir, "ca.crt"), pki.ca)
	// caller-c's key is one the stand-in refuses (a revoked key), so the
	// broadcaster's 403 makes scgate count a key rejection.
	vault := fmt.Sprintf("[callers]\n\"caller-a\" = \"k\"\n\"caller-c\" = \"revoked\"\n\n"+
		"[[keys.k]]\nsecret = %q\nexpires = 2099-01-01T00:00:00Z\n\n"+
		"[[keys.revoked]]\nsecret = \"LiveRev1.FAKEfakeFAKEfakeFAKEfakeFAKEfake\"\n", standinKey)
	writeFile(t, filepath.Join(dir, "keys.toml"), []byte(vault))
	cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
tls = "files"
cert_file = "tls.crt"
key_file = "tls.key"
client_ca_file = "ca.crt"
client_auth = "verify-if-given"
shutdown_delay = "0s"
shutdown_timeout = "5s"

[admin]
listen = "127.0.0.1:0"

[upstream]
url = "http://%s"

[vault]
file = "keys.toml"
poll_interval = "100ms"

[identity]
order = ["mtls", "cidr"]
[identity.cidr]
"127.0.0.1/32" = "caller-a"
"127.0.0.2/32" = "caller-b"
"127.0.0.3/32" = "caller-c"

[limits]
rate = 0.001
burst = 1
`, upstream)
	cfgPath := filepath.Join(dir, "config.toml")
	writeFile(t, cfgPath, []byte(cfg))

	gw := start(t, "stderr", "run", "--config", cfgPath)
	var ready struct{ Msg, Listen, Admin string }
	line := gw.await(t, "readiness", func(l string) bool {
		return json.Unmarshal([]byte(l), &ready) == nil && ready.Msg == "scgate is ready"
	})
	t.Logf("gateway: %s", line)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.ca)
	client := func(from string) *http.Client {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext:     d.DialContext,
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
		}}
	}
	base := "https://" + ready.Listen
	for _, tc := range []struct {
		from, path string
		want       int
	}{
		{"127.0.0.1", "/api/v2/channels/?server=1", http.StatusOK},              // caller-a, with its key
		{"127.0.0.1", "/api/v2/channels/?server=1", http.StatusTooManyRequests}, // caller-a again: burst 1
		{"127.0.0.2", "/api/v2/channels/?server=1", http.StatusForbidden},       // caller-b: no key in the vault
		// caller-c: a key-protected read with a key the broadcaster refuses.
		{"127.0.0.3", "/api/v2/playlists/?server=1", http.StatusForbidden},
	} {
		resp, err := client(tc.from).Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("GET from %s: %d, want %d", tc.from, resp.StatusCode, tc.want)
		}
	}
	// A vault edit, so that the reload metrics move.
	writeFile(t, filepath.Join(dir, "keys.toml"), []byte(vault+"\n# edited\n[[keys.k]]\nsecret = \"LiveTst2.FAKEfakeFAKEfakeFAKEfakeFAKEfake\"\n"))
	gw.await(t, "vault reload", func(l string) bool { return strings.Contains(l, `"msg":"vault reloaded"`) })

	resp, err := client("127.0.0.1").Get("http://" + ready.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	names := map[string]bool{}
	for name, mf := range families {
		for _, n := range sampleNames(name, mf.GetType()) {
			names[n] = true
		}
	}
	return names
}

// sampleNames are the series names a family of this type exposes.
func sampleNames(family string, typ dto.MetricType) []string {
	switch typ {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []string{family + "_bucket", family + "_sum", family + "_count", family}
	case dto.MetricType_SUMMARY:
		return []string{family, family + "_sum", family + "_count"}
	}
	return []string{family}
}

// readmeMetricRow is a row of docs/reference.md's metrics table: | `name` | type | labels |
var readmeMetricRow = regexp.MustCompile("(?m)^\\| `(scgate_[a-z_]+)` \\| (counter|gauge|histogram|summary) \\|")

// readmeMetricNames returns the metrics docs/reference.md documents (the contract of
// docs/design.md, Metrics), expanded like sampleNames.
func readmeMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	root, err := scgatebin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]dto.MetricType{"counter": dto.MetricType_COUNTER, "gauge": dto.MetricType_GAUGE,
		"histogram": dto.MetricType_HISTOGRAM, "summary": dto.MetricType_SUMMARY}
	names := map[string]bool{}
	for _, m := range readmeMetricRow.FindAllStringSubmatch(string(data), -1) {
		for _, n := range sampleNames(m[1], types[m[2]]) {
			names[n] = true
		}
	}
	if len(names) == 0 {
		t.Fatal("docs/reference.md: no metrics table found")
	}
	return names
}
