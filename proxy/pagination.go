package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/scgate/scgate/proxy/pagelinks"
)

// smallPage is the largest answer (by Content-Length) whose rewritten body is
// collected whole, so that it keeps a Content-Length; larger ones stream.
const smallPage = pagelinks.BufferSize

// smallPageOut bounds the collected body of a small page: more (when many
// links grew) and it streams like a large one.
const smallPageOut = 2 * smallPage

// rewritesPageLinks reports whether resp is an answer whose top-level
// next/previous links are rewritten: a GET on a paginated route, with an
// uncompressed JSON body.
func rewritesPageLinks(resp *http.Response, st *state) bool {
	return resp.Request.Method == http.MethodGet && paginatedRoutes[st.route] &&
		resp.Body != nil && resp.Body != http.NoBody &&
		isJSON(resp.Header.Get("Content-Type")) && identityEncoded(resp.Header)
}

// rewritePageLinks points the absolute top-level "next" and "previous" links
// of a JSON object answer at the gateway's own origin, as the body streams
// through (pagelinks). Only the bytes of those two values change. The body's
// length may change, so a large answer loses its Content-Length and streams;
// an answer of at most smallPage bytes is collected and keeps one. Either way
// the memory held is a window reserved from the buffer budget; with the
// budget spent, the answer passes unchanged.
func (h *Handler) rewritePageLinks(resp *http.Response, st *state) error {
	origin := h.origin(st)
	maxReplacement := len(origin) + len(st.panelPrefix) + 2*pagelinks.MaxLinkBytes
	small := resp.ContentLength >= 0 && resp.ContentLength <= smallPage
	reserve := pagelinks.Footprint(maxReplacement)
	if small {
		reserve += smallPageOut + bytes.MinRead
	}
	if !h.budget.take(reserve, useRewrite, st) {
		return nil
	}
	release := sync.OnceFunc(func() { h.budget.give(reserve) })
	opts := pagelinks.Options{
		Replace: func(link string) (string, bool) {
			u, err := url.Parse(link)
			if err != nil || u.Host == "" {
				return "", false
			}
			return origin + st.panelPrefix + u.RequestURI(), true
		},
		MaxReplacement: maxReplacement,
	}
	if small {
		opts.SizeHint = resp.ContentLength
	} else {
		// Freed at the end of the body, or as soon as the rest passes through
		// unchanged, so that a slow reader's reservation ends early.
		opts.Release = release
	}
	r := pagelinks.NewReader(resp.Body, opts)
	// The reservation lasts until the body is closed (ReverseProxy always
	// closes it), whichever way it ends.
	resp.Body = readCloser{r, closeFunc(func() error { err := r.Close(); release(); return err })}
	if small {
		var out bytes.Buffer
		out.Grow(int(resp.ContentLength) + bytes.MinRead) // grows if the links grow
		if _, err := out.ReadFrom(io.LimitReader(r, smallPageOut+1)); err != nil {
			return err
		}
		if out.Len() <= smallPageOut {
			_ = r.Close()
			resp.Body = readCloser{&out, closeFunc(func() error { release(); return nil })}
			resp.ContentLength = int64(out.Len())
			resp.Header.Set("Content-Length", strconv.Itoa(out.Len()))
			return nil
		}
		rest := resp.Body
		resp.Body = readCloser{io.MultiReader(&out, rest), rest}
	}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	resp.TransferEncoding = nil
	return nil
}

type closeFunc func() error

func (f closeFunc) Close() error { return f() }
