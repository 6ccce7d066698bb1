package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// modifyResponse keeps the upstream origin out of what callers see and marks
// the response with the request id. Everything else passes unchanged.
func (h *Handler) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(stateKey{}).(*state)
	st.upstreamStatus = resp.StatusCode
	h.metrics.UpstreamAnswered(st.route, time.Since(st.start))
	// Only scgate may say that an answer is scgate's own (in any spelling
	// a client could read as Scgate-*), in the headers or the trailers
	// (dropScgateTrailers removes those not announced).
	dropScgateHeaders(resp.Header)
	// Also once the body may have been read (the trailers come with its end).
	defer func() { dropScgateHeaders(resp.Trailer) }()
	resp.Header["X-Request-Id"] = st.idHeader
	h.afterUpstream(resp, st)
	h.relativeLinks(resp.Header)
	// A HEAD answer has no body to rewrite: its Content-Length is the
	// upstream's, for the GET it describes.
	if resp.Request.Method != http.MethodHead && isJSON(resp.Header.Get("Content-Type")) && identityEncoded(resp.Header) {
		return h.rewritePageLinks(resp, st)
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
func (h *Handler) relativeLinks(hdr http.Header) {
	for _, name := range [...]string{"Location", "Content-Location"} {
		if loc := hdr.Get(name); loc != "" {
			if rel, ok := h.relativeToUpstream(loc); ok {
				hdr.Set(name, rel)
			}
		}
	}
	if links := hdr["Link"]; len(links) > 0 {
		for i, v := range links {
			links[i] = h.relativeLinkTargets(v)
		}
	}
}

// relativeLinkTargets rewrites each <target> of a Link value (RFC 8288)
// that points at the upstream's origin; quoted parameters are left alone.
func (h *Handler) relativeLinkTargets(v string) string {
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
			if rel, ok := h.relativeToUpstream(target); ok {
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

// relativeToUpstream turns an absolute URL on the upstream origin into a
// relative one, so a followed redirect comes back through scgate.
func (h *Handler) relativeToUpstream(loc string) (string, bool) {
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" || hostPort(u) != h.upstreamHost {
		return "", false
	}
	return u.RequestURI(), true
}

// rewritePageLinks replaces the origin of absolute top-level "next" and
// "previous" links in a JSON body with the gateway's own origin. Only the bytes
// of those two values change; every other byte passes as the broadcaster sent it.
func (h *Handler) rewritePageLinks(resp *http.Response, st *state) error {
	if resp.ContentLength > h.rewriteLimit {
		return nil
	}
	// Only an object has top-level links: an array (a plain list, such as
	// the playlists) streams on without being held whole.
	s := &sniffedBody{rest: resp.Body}
	first, err := s.sniff()
	resp.Body = s
	if err != nil {
		return err
	}
	if first != '{' && first != 0 {
		return nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, h.rewriteLimit+1))
	if err != nil {
		return err
	}
	if int64(len(head)) > h.rewriteLimit {
		// Too big to hold: stream it on as it is.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), s.rest), s.rest}
		return nil
	}
	_ = resp.Body.Close()
	body := head
	if bytes.Contains(head, []byte(`"next"`)) || bytes.Contains(head, []byte(`"previous"`)) {
		body = replaceLinks(head, h.origin(st))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.TransferEncoding = nil
	return nil
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

// replaceLinks splices new values for the top-level next/previous strings of a
// JSON object. Anything that is not such an object is returned unchanged.
func replaceLinks(body []byte, origin string) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return body
	}
	type splice struct {
		start, end int
		value      string
	}
	var splices []splice
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return body
		}
		key, _ := tok.(string)
		keyEnd := int(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return body
		}
		if key != "next" && key != "previous" {
			continue
		}
		var link string
		if json.Unmarshal(raw, &link) != nil {
			continue // null or not a string
		}
		u, err := url.Parse(link)
		if err != nil || u.Host == "" {
			continue
		}
		start := keyEnd + bytes.Index(body[keyEnd:], raw)
		splices = append(splices, splice{start, start + len(raw), origin + u.RequestURI()})
	}
	if len(splices) == 0 {
		return body
	}
	out := make([]byte, 0, len(body)+64)
	last := 0
	for _, s := range splices {
		out = append(out, body[last:s.start]...)
		enc, _ := marshalNoEscape(s.value)
		out = append(out, enc...)
		last = s.end
	}
	return append(out, body[last:]...)
}

func marshalNoEscape(s string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
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

// sniffedBody is a response body whose first bytes were read ahead to see
// how the JSON starts; it gives them back before the rest, unchanged.
type sniffedBody struct {
	buf  [32]byte
	n    int // bytes in buf
	off  int // bytes of buf already read by the caller
	rest io.ReadCloser
}

// sniff reads until the first byte that is not JSON whitespace and returns
// it; 0 when the body ends first or buf fills with whitespace (the caller
// then reads the body whole, as for an object). io.EOF is not an error here.
func (s *sniffedBody) sniff() (byte, error) {
	for s.n < len(s.buf) {
		n, err := s.rest.Read(s.buf[s.n:])
		for _, c := range s.buf[s.n : s.n+n] {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				s.n += n
				return c, nil
			}
		}
		s.n += n
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, nil
}

func (s *sniffedBody) Read(p []byte) (int, error) {
	if s.off < s.n {
		n := copy(p, s.buf[s.off:s.n])
		s.off += n
		return n, nil
	}
	return s.rest.Read(p)
}

func (s *sniffedBody) Close() error { return s.rest.Close() }

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
