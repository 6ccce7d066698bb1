package proxy

import (
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// modifyResponse keeps the upstream origin out of what callers see and marks
// the response with the request id. Everything else passes unchanged.
func (h *Handler) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(stateKey{}).(*state)
	st.upstreamStatus = resp.StatusCode
	if st.cache != "hit" && st.cache != "stale" {
		h.metrics.UpstreamAnswered(st.panel.name, st.route, time.Since(st.start))
	}
	// Only scgate may say that an answer is scgate's own (in any spelling
	// a client could read as Scgate-*), in the headers or the trailers
	// (dropScgateTrailers removes those not announced).
	dropScgateHeaders(resp.Header)
	// Also once the body may have been read (the trailers come with its end).
	defer func() { dropScgateHeaders(resp.Trailer) }()
	resp.Header["X-Request-Id"] = st.idHeader
	h.afterUpstream(resp, st)
	relativeLinks(resp.Header, st)
	if rewritesPageLinks(resp, st) {
		return h.rewritePageLinks(resp, st) // pagination.go
	}
	return nil
}

// dropScgateHeaders removes every Scgate-* field from h.
func dropScgateHeaders(h http.Header) {
	for k := range h {
		if hasNamePrefix(k, "Scgate-") {
			delete(h, k)
		}
	}
}

// dropScgateTrailers removes Scgate-* trailers that ReverseProxy copied into
// the answer after the body, announced or not (http.TrailerPrefix).
func dropScgateTrailers(h http.Header) {
	for k := range h {
		if hasNamePrefix(strings.TrimPrefix(k, http.TrailerPrefix), "Scgate-") {
			delete(h, k)
		}
	}
}

// relativeLinks keeps the upstream's origin out of Location,
// Content-Location and the targets of Link.
func relativeLinks(hdr http.Header, st *state) {
	for _, name := range [...]string{"Location", "Content-Location"} {
		if loc := hdr.Get(name); loc != "" {
			if rel, ok := relativeToUpstream(loc, st); ok {
				hdr.Set(name, rel)
			}
		}
	}
	if links := hdr["Link"]; len(links) > 0 {
		for i, v := range links {
			links[i] = relativeLinkTargets(v, st)
		}
	}
}

// relativeLinkTargets rewrites each <target> of a Link value (RFC 8288)
// that points at the upstream's origin; quoted parameters are left alone.
func relativeLinkTargets(v string, st *state) string {
	if !strings.Contains(v, "<") {
		return v
	}
	var b strings.Builder
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted && i+1 < len(v):
			b.WriteByte(c)
			i++
			c = v[i]
		case c == '<' && !quoted:
			end := strings.IndexByte(v[i:], '>')
			if end < 0 {
				break
			}
			target := v[i+1 : i+end]
			if rel, ok := relativeToUpstream(target, st); ok {
				target = rel
			}
			b.WriteByte('<')
			b.WriteString(target)
			b.WriteByte('>')
			i += end
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// relativeToUpstream turns an absolute URL on the request's panel's origin
// into a relative one, so a followed redirect comes back through scgate (to
// the same panel: the /panels/NAME prefix the request used is put back).
func relativeToUpstream(loc string, st *state) (string, bool) {
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" || hostPort(u) != st.panel.upstreamHost {
		return "", false
	}
	return st.panelPrefix + u.RequestURI(), true
}

// origin is where a caller should send its next request: the configured public
// URL, else the scheme and host the caller used.
func (h *Handler) origin(st *state) string {
	switch {
	case h.publicURL != nil && h.routing.ByHost:
		// The Host names the panel: keep it, so that the link comes
		// back to the same panel.
		return h.publicURL.Scheme + "://" + st.host
	case h.publicURL != nil:
		return h.publicURL.Scheme + "://" + h.publicURL.Host
	}
	scheme := "http"
	if st.tls {
		scheme = "https"
	}
	return scheme + "://" + st.host
}

func isJSON(ct string) bool {
	if ct == "" {
		return false
	}
	// The broadcaster's own value, recognised without parsing (ParseMediaType
	// allocates a map for the parameters).
	if ct == "application/json" || ct == "application/json; charset=utf-8" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func identityEncoded(h http.Header) bool {
	ce := h.Get("Content-Encoding")
	return ce == "" || strings.EqualFold(ce, "identity")
}

// hostPort is u's host with the scheme's default port made explicit, so that
// https://h and https://h:443 compare equal.
func hostPort(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return strings.ToLower(net.JoinHostPort(host, port))
}

type readCloser struct {
	io.Reader
	io.Closer
}
