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
	if h.series != nil {
		h.series.upstreamDuration(st.route).Observe(time.Since(st.start).Seconds())
	}
	for k := range resp.Header {
		// Only scgate may say that an answer is scgate's own (in any
		// spelling a client could read as Scgate-*).
		if hasNamePrefix(k, "Scgate-") {
			delete(resp.Header, k)
		}
	}
	resp.Header["X-Request-Id"] = st.idHeader
	h.afterUpstream(resp, st)
	if loc := resp.Header.Get("Location"); loc != "" {
		if rel, ok := h.relativeToUpstream(loc); ok {
			resp.Header.Set("Location", rel)
		}
	}
	if rewritesPageLinks(resp, st) {
		return h.rewritePageLinks(resp, st) // pagination.go
	}
	return nil
}

// relativeToUpstream turns an absolute URL on the upstream origin into a
// relative one, so a followed redirect comes back through scgate.
func (h *Handler) relativeToUpstream(loc string) (string, bool) {
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" || hostPort(u) != h.upstreamHost {
		return "", false
	}
	return u.RequestURI(), true
}

// origin is where a caller should send its next request: the configured public
// URL, else the scheme and host the caller used.
func (h *Handler) origin(st *state) string {
	if h.publicURL != nil {
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
