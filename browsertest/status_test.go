package browsertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/scgate/scgate/internal/statuspage"
)

// The vault's secrets (fake, accepted only by the stand-in): the part after
// the dot must never reach the page.
const (
	keyExpiring = "Expiring.FAKEbrowserFAKEexpiringFAKE01"
	keyExpired  = "Expired1.FAKEbrowserFAKEexpiredFAKE002"
	keyStandby  = "Standby1.FAKEbrowserFAKEstandbyFAKE003"
	keyRejected = "Rejected.FAKEbrowserFAKErejectedFAKE04"
	keyPending  = "Pending1.FAKEbrowserFAKEpendingFAKE005"
	keyNext     = "NextKey1.FAKEbrowserFAKEnextkeyFAKE006"
	keyOld      = "OldKey01.FAKEbrowserFAKEoldkey01FAKE07"
	password    = "browser-test-password"
	// xssCaller would set window.__xss if the page let markup through.
	xssCaller = `<img src=x onerror="window.__xss=1">`
)

var secrets = []string{keyExpiring, keyExpired, keyStandby, keyRejected, keyPending, keyNext, keyOld}

func TestStatusPageInChromium(t *testing.T) {
	chrome := findChromium(t)
	bin := buildScgate(t)
	dir := t.TempDir()

	// The stand-in accepts every key but the one to be rejected.
	si := start(t, bin, "standin", "--listen", "127.0.0.1:0",
		"--key", keyExpiring, "--key", keyStandby, "--key", keyNext)
	upstream := si.waitFor(t, regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/api/v2/`), 30*time.Second)

	now := time.Now().UTC()
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	vault := fmt.Sprintf(`[callers]
"radio-expiring" = "playlist-admin"
"radio-archive" = "archive"
"radio-rotating" = "stats"
"radio-staged" = "staged"
%q = "playlist-admin"

[[keys.playlist-admin]]
secret = %q

[[keys.playlist-admin]]
secret = %q
expires = %s

[[keys.playlist-admin]]
secret = %q
not_before = %s

[[keys.archive]]
secret = %q
expires = %s

[[keys.stats]]
secret = %q

[[keys.stats]]
secret = %q
not_before = %s

[[keys.staged]]
secret = %q
not_before = %s
`, xssCaller, keyOld, keyExpiring, ts(3*24*time.Hour+time.Hour), keyNext, ts(2*24*time.Hour),
		keyExpired, ts(-48*time.Hour), keyStandby, keyRejected, ts(-24*time.Hour), keyPending, ts(10*24*time.Hour))
	write(t, dir, "keys.toml", vault)
	write(t, dir, "admin-password", password+"\n")
	write(t, dir, "config.toml", `[server]
listen = "127.0.0.1:0"
tls = "off"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
password_file = "admin-password"
[upstream]
url = "`+upstream+`"
[vault]
file = "keys.toml"
[identity]
static = "radio-rotating"
[limits]
rate = 5.0
burst = 10
[log]
format = "json"
`)
	gw := start(t, bin, "run", "--config", filepath.Join(dir, "config.toml"))
	gwAddr := gw.waitFor(t, regexp.MustCompile(`"msg":"scgate is ready".*"listen":"([^"]+)"`), 60*time.Second)
	admin := gw.waitFor(t, regexp.MustCompile(`"msg":"scgate is ready".*"admin":"([^"]+)"`), time.Second)

	// One request with the stats key's newest version, which the stand-in
	// refuses: scgate confirms the refusal, sets the version aside and
	// retries with the standby version.
	resp, body := fetch(t, "http://"+gwAddr+"/api/v2/playlists/?server=1", false)
	if resp.StatusCode != 200 {
		t.Fatalf("request through the gateway: %d %s", resp.StatusCode, body)
	}
	// The status page's own answer, through the gateway's admin listener.
	resp, body = fetch(t, "http://"+admin+"/status.json", true)
	var st statuspage.Status
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Summary.VersionsRejected != 1 {
		t.Fatalf("/status.json: %d %.400s", resp.StatusCode, body)
	}

	// A reload that adds a caller: its audit line is on the page.
	write(t, dir, "keys.toml", strings.Replace(vault, "[callers]\n", "[callers]\n\"radio-new\" = \"staged\"\n", 1))
	deadline := time.Now().Add(30 * time.Second)
	for st.Summary.Callers != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("the reload did not reach /status.json: %.400s", body)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
		_, body = fetch(t, "http://"+admin+"/status.json", true)
		st = statuspage.Status{}
		_ = json.Unmarshal([]byte(body), &st)
	}

	page := renderPage(t, chrome, "http://"+admin+"/status")
	checkPage(t, page)
	saveScreenshot(t, page.screenshot)
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fetch(t *testing.T, url string, auth bool) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth("admin", password)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// rendered is what the browser made of the page.
type rendered struct {
	text, html  string
	facts       pageFacts
	consoleErrs []string
	screenshot  []byte
}

// pageFacts are read from the DOM and the computed styles by one script.
type pageFacts struct {
	Title          string             `json:"title"`
	Lang           string             `json:"lang"`
	Scripts        int                `json:"scripts"`
	XSS            bool               `json:"xss"`
	Refresh        string             `json:"refresh"`
	Headings       []string           `json:"headings"`
	Unlabelled     []string           `json:"unlabelled"`
	Tables         int                `json:"tables"`
	TablesNoHead   int                `json:"tablesNoHead"`
	HeadersNoScope int                `json:"headersNoScope"`
	Captions       int                `json:"captions"`
	SVGs           int                `json:"svgs"`
	SVGNoLabel     int                `json:"svgNoLabel"`
	BarClasses     map[string]int     `json:"barClasses"`
	Contrast       []contrastFact     `json:"contrast"`
	BarContrast    map[string]float64 `json:"barContrast"`
}

type contrastFact struct {
	Class string  `json:"class"`
	FG    string  `json:"fg"`
	BG    string  `json:"bg"`
	Ratio float64 `json:"ratio"`
}

// factsScript reads the page: headings, labels, table headers, the SVG
// time lines, and the WCAG contrast ratio of each warning colour from the
// computed styles (text against the first opaque background behind it).
const factsScript = `(() => {
  const lum = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(',').map(s => parseFloat(s));
    if (p.length === 4 && p[3] === 0) return null;
    const ch = p.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const b = getComputedStyle(e).backgroundColor;
      if (lum(b) !== null) return b;
    }
    return 'rgb(255, 255, 255)';
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const f = {
    title: document.title, lang: document.documentElement.lang, scripts: document.scripts.length,
    xss: window.__xss === 1,
    refresh: (document.querySelector('meta[http-equiv=refresh]') || {}).content || '',
    headings: [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => h.tagName + ' ' + h.textContent.trim()),
    unlabelled: [...document.querySelectorAll('input,select,textarea')].filter(i =>
      !(i.id && document.querySelector('label[for="' + i.id + '"]')) && !i.getAttribute('aria-label')).map(i => i.name),
    tables: document.querySelectorAll('table').length,
    tablesNoHead: [...document.querySelectorAll('table')].filter(t => !t.querySelector('thead th')).length,
    headersNoScope: [...document.querySelectorAll('th')].filter(th => !th.getAttribute('scope')).length,
    captions: document.querySelectorAll('table > caption').length,
    svgs: document.querySelectorAll('svg.timeline').length,
    svgNoLabel: [...document.querySelectorAll('svg.timeline')].filter(s => s.getAttribute('role') !== 'img' || !s.getAttribute('aria-label')).length,
    barClasses: {}, contrast: [], barContrast: {},
  };
  document.querySelectorAll('svg.timeline g').forEach(g => { f.barClasses[g.getAttribute('class')] = (f.barClasses[g.getAttribute('class')] || 0) + 1; });
  for (const cls of ['warn', 'bad', 'ok', 's-rejected', 's-expired', 's-active']) {
    const el = document.querySelector('.' + cls);
    if (!el) { f.contrast.push({class: cls, ratio: 0}); continue; }
    const fg = getComputedStyle(el).color, bg = bgOf(el);
    f.contrast.push({class: cls, fg: fg, bg: bg, ratio: ratio(fg, bg)});
  }
  document.querySelectorAll('svg.timeline g rect').forEach(r => {
    const cls = r.parentElement.getAttribute('class');
    f.barContrast[cls] = ratio(getComputedStyle(r).fill, bgOf(r.closest('td')));
  });
  return f;
})()`

func renderPage(t *testing.T, chrome, url string) rendered {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	var mu sync.Mutex
	var out rendered
	// The listener runs on the tab's reader, in the order of arrival: every
	// message the page wrote before the last command answered is in by
	// the time that command returns.
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				out.consoleErrs = append(out.consoleErrs, fmt.Sprintf("console.%s %v", e.Type, e.Args))
			}
		case *runtime.EventExceptionThrown:
			out.consoleErrs = append(out.consoleErrs, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			// CSP violations, failed loads and the like land here.
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				out.consoleErrs = append(out.consoleErrs, fmt.Sprintf("log %s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		}
	}))
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("chromium, %s: %v", what, err)
		}
	}
	// The first call starts the browser; it must not carry the timeout.
	_, err := chromedp.Call(ctx, log.Enable, cdp.Empty{})
	must("Log.enable", err)
	tctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()
	_, err = chromedp.Call(tctx, network.Enable, network.EnableParams{})
	must("Network.enable", err)
	auth := base64.StdEncoding.EncodeToString([]byte("admin:" + password))
	_, err = chromedp.Call(tctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Basic " + auth}})
	must("Network.setExtraHTTPHeaders", err)
	must("navigate", chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("h1"))))
	out.text, err = chromedp.Run(tctx, chromedp.Evaluate[string](`document.body.innerText`))
	must("innerText", err)
	out.html, err = chromedp.Run(tctx, chromedp.OuterHTML(chromedp.CSS("html")))
	must("outerHTML", err)
	out.facts, err = chromedp.Run(tctx, chromedp.Evaluate[pageFacts](factsScript))
	must("facts", err)
	out.screenshot, err = chromedp.Run(tctx, chromedp.FullScreenshot(100))
	must("screenshot", err)
	mu.Lock()
	defer mu.Unlock()
	res := out
	res.consoleErrs = append([]string(nil), out.consoleErrs...)
	return res
}

func checkPage(t *testing.T, p rendered) {
	t.Helper()
	f := p.facts
	t.Logf("headings %v; contrast %+v; bars %v", f.Headings, f.Contrast, f.BarContrast)
	// Visible text: each state the vault is in.
	for _, want := range []string{
		"scgate status", "reachable", "radio-expiring", "playlist-admin", "Expiring expires in 3d",
		"radio-archive", "expired", "no version is valid now", "radio-rotating", "set aside until",
		"radio-staged", "pending", "Standby1", "NextKey1", "OldKey01", "vault loaded", "callers_added: radio-new -> staged", "Rejected was refused by the broadcaster", xssCaller, "Needs attention",
		"tokens", "in flight",
	} {
		if !strings.Contains(p.text, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	// The SVG time lines: one per caller, labelled, with a bar of each kind.
	if f.SVGs != 6 || f.SVGNoLabel != 0 {
		t.Errorf("%d time lines (%d unlabelled), want 6 labelled", f.SVGs, f.SVGNoLabel)
	}
	for _, cls := range []string{"v-warning", "v-standby", "v-expired", "v-rejected", "v-pending", "v-pending"} {
		if f.BarClasses[cls] == 0 {
			t.Errorf("no %s bar in the time lines: %v", cls, f.BarClasses)
		}
	}
	if len(p.consoleErrs) > 0 {
		t.Errorf("console errors: %v", p.consoleErrs)
	}
	if f.Scripts != 0 || f.XSS {
		t.Errorf("%d scripts on the page; injected markup ran: %v", f.Scripts, f.XSS)
	}
	for _, s := range secrets {
		_, rest, _ := strings.Cut(s, ".")
		if strings.Contains(p.html, rest) {
			t.Errorf("the DOM holds the secret of %s…", s[:8])
		}
	}
	// Accessibility: a title and language, one h1 then h2s, every input
	// labelled, every table with a caption and scoped headers, and the
	// warning colours readable (WCAG AA: 4.5:1 for text, 3:1 for the bars).
	if f.Title == "" || f.Lang == "" || f.Refresh == "" {
		t.Errorf("title %q, lang %q, refresh %q", f.Title, f.Lang, f.Refresh)
	}
	if len(f.Headings) < 4 || f.Headings[0] != "H1 scgate status" {
		t.Errorf("headings %v", f.Headings)
	}
	for _, h := range f.Headings[1:] {
		if !strings.HasPrefix(h, "H2 ") {
			t.Errorf("heading %q: after the h1, sections are h2", h)
		}
	}
	if len(f.Unlabelled) > 0 {
		t.Errorf("inputs without a label: %v", f.Unlabelled)
	}
	if f.Tables < 3 || f.TablesNoHead > 0 || f.HeadersNoScope > 0 || f.Captions != f.Tables {
		t.Errorf("tables %d, without header row %d, headers without scope %d, captions %d", f.Tables, f.TablesNoHead, f.HeadersNoScope, f.Captions)
	}
	for _, c := range f.Contrast {
		if c.Ratio < 4.5 {
			t.Errorf("text colour .%s: contrast %.2f (%s on %s), want at least 4.5", c.Class, c.Ratio, c.FG, c.BG)
		}
	}
	for cls, r := range f.BarContrast {
		if (cls == "v-warning" || cls == "v-rejected" || cls == "v-active") && r < 3 {
			t.Errorf("time line bar %s: contrast %.2f against the page, want at least 3", cls, r)
		}
	}
}

// saveScreenshot writes the page's image to the test's output folder and,
// with SCGATE_UPDATE_SCREENSHOT=1, to docs/status-page.png. The committed
// image must be a PNG of the page too.
func saveScreenshot(t *testing.T, jpegOrPNG []byte) {
	t.Helper()
	img, err := decodeImage(jpegOrPNG)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("SCGATE_BROWSERTEST_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "status-page.png")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%dx%d)", out, img.Bounds().Dx(), img.Bounds().Dy())
	docs := filepath.Join("..", "docs", "status-page.png")
	if os.Getenv("SCGATE_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(docs, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(docs)
	if err != nil {
		t.Fatalf("docs/status-page.png: %v (write it with SCGATE_UPDATE_SCREENSHOT=1)", err)
	}
	defer f.Close()
	committed, err := png.Decode(f)
	if err != nil || committed.Bounds().Dx() != img.Bounds().Dx() {
		t.Errorf("docs/status-page.png is not a PNG of the page at its width (%v)", err)
	}
}
