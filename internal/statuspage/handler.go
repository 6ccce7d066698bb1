package statuspage

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var (
	//go:embed page.tmpl
	pageSource string
	//go:embed page.css
	pageStyle string

	pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
		"date":  formatDate,
		"human": Human,
		"deref": func(p *int) int { return *p },
	}).Parse(pageSource))

	// contentSecurityPolicy allows the page's one style sheet (by its
	// hash) and nothing else: no script of any origin, no image, no frame,
	// no form target elsewhere. Even a caller name that slipped past the
	// template's escaping could not run.
	contentSecurityPolicy = "default-src 'none'; style-src 'sha256-" + hashOf(pageStyle) +
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(h[:])
}

func formatDate(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return ""
		}
		t = *x
	}
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// setHeaders marks every answer as private, never cached and never framed.
func setHeaders(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
}

// query reads the request's query, answering 400 itself when it is bad.
func query(w http.ResponseWriter, r *http.Request) (Query, bool) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		setHeaders(w, "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(err.Error() + "\n"))
		return q, false
	}
	return q, true
}

// JSON serves /status.json: the Status for the request's query.
func (p *Page) JSON() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, ok := query(w, r)
		if !ok {
			return
		}
		body, err := json.Marshal(p.Snapshot(r.Context(), q))
		if err != nil {
			http.Error(w, "cannot encode the status", http.StatusInternalServerError)
			return
		}
		setHeaders(w, "application/json")
		_, _ = w.Write(append(body, '\n'))
	})
}

// HTML serves /status: the page, rendered on the server, with no script.
func (p *Page) HTML() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, ok := query(w, r)
		if !ok {
			return
		}
		var buf bytes.Buffer
		if err := pageTemplate.Execute(&buf, p.view(p.Snapshot(r.Context(), q), r.URL.Path)); err != nil {
			// Rendered into a buffer, so a failure sends nothing half-made.
			http.Error(w, "cannot render the status page", http.StatusInternalServerError)
			return
		}
		setHeaders(w, "text/html; charset=utf-8")
		_, _ = w.Write(buf.Bytes())
	})
}

// view is what the template reads.
type view struct {
	S                  Status
	Style              template.CSS
	RefreshSeconds     int
	Uptime, WarnBefore time.Duration
	Ahead              time.Duration
	JSONLink           string
	Prev, Next         string
	Shown              int
	MaxLimit           int
	MaxQueryLen        int
	MaxReloads         int
	Rows               []row
	Certs              []certRow
}

type row struct {
	C Caller
	T timeline
}

type certRow struct {
	Name          string
	NotAfter      time.Time
	Left          time.Duration
	Expired, Soon bool
}

func (p *Page) view(s Status, path string) view {
	warn := p.opts.ExpiryWarnBefore
	v := view{
		S: s, Style: template.CSS(pageStyle), RefreshSeconds: int(p.opts.Refresh / time.Second),
		Uptime: time.Duration(s.UptimeSeconds) * time.Second, WarnBefore: warn, Ahead: max(2*warn, tlAheadAt),
		Shown: len(s.Callers.Items), MaxLimit: MaxLimit, MaxQueryLen: MaxQueryLen, MaxReloads: MaxReloads,
		JSONLink: pageLink(path+".json", s.Callers.Q, s.Callers.Offset, s.Callers.Limit),
	}
	if c := s.Callers; c.Offset > 0 {
		v.Prev = pageLink(path, c.Q, max(0, c.Offset-c.Limit), c.Limit)
	}
	if c := s.Callers; c.Offset+c.Limit < c.Matched {
		v.Next = pageLink(path, c.Q, c.Offset+c.Limit, c.Limit)
	}
	for _, c := range s.Callers.Items {
		v.Rows = append(v.Rows, row{C: c, T: newTimeline(c.Versions, s.GeneratedAt, warn)})
	}
	for _, c := range s.Certificates {
		left := c.NotAfter.Sub(s.GeneratedAt)
		v.Certs = append(v.Certs, certRow{Name: c.Name, NotAfter: c.NotAfter, Left: left, Expired: left <= 0, Soon: left < warn})
	}
	return v
}

// pageLink is a relative link to path with the paging query.
func pageLink(path, q string, offset, limit int) string {
	vals := url.Values{}
	if q != "" {
		vals.Set("q", q)
	}
	if offset > 0 {
		vals.Set("offset", strconv.Itoa(offset))
	}
	if limit != DefaultLimit {
		vals.Set("limit", strconv.Itoa(limit))
	}
	u := url.URL{Path: path, RawQuery: vals.Encode()}
	return u.String()
}
