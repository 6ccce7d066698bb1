package h1client

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
)

// ErrMalformed is wrapped by every error about a response that breaks the
// HTTP/1.1 message syntax or framing rules this package enforces.
var ErrMalformed = errors.New("h1client: malformed response")

// ErrHeaderTooLarge is wrapped when a response's header section (or trailer
// section) exceeds Options.MaxHeaderBytes or Options.MaxHeaderFields.
var ErrHeaderTooLarge = errors.New("h1client: response header section too large")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// framing says how a response body is delimited.
type framing uint8

const (
	framingNone    framing = iota // no body (HEAD, 204, 304)
	framingLength                 // Content-Length
	framingChunked                // Transfer-Encoding: chunked
	framingClose                  // read until the connection closes
)

// limits bound what a response's header or trailer section may hold.
type limits struct {
	maxBytes  int
	maxFields int
}

// head is a parsed final response head.
type head struct {
	status     int
	statusLine string // "200 OK"
	minor      int    // HTTP/1.minor
	header     http.Header
	framing    framing
	length     int64 // framingLength only
	close      bool  // the server asked to close, or HTTP/1.0
}

// maxInterim bounds the 1xx responses skipped before a final one.
const maxInterim = 8

// readHead reads interim (1xx) responses, handing each to interim when it
// is not nil, and then the final response head to a request of the given
// method.
func readHead(br *bufio.Reader, method string, lim limits, scratch *[]byte, interim func(int, http.Header) error) (*head, error) {
	budget := lim
	for i := 0; ; i++ {
		h, err := readOneHead(br, &budget, scratch)
		if err != nil {
			return nil, err
		}
		if h.status >= 200 {
			if err := h.frame(method); err != nil {
				return nil, err
			}
			return h, nil
		}
		if h.status == http.StatusSwitchingProtocols {
			return nil, malformed("101 Switching Protocols to a request that asked for no upgrade")
		}
		if i+1 >= maxInterim {
			return nil, malformed("more than %d interim (1xx) responses", maxInterim)
		}
		if interim != nil {
			if err := interim(h.status, h.header); err != nil {
				return nil, err
			}
		}
	}
}

// readOneHead reads one status line and header section, charging it to lim.
func readOneHead(br *bufio.Reader, lim *limits, scratch *[]byte) (*head, error) {
	line, err := readLine(br, lim)
	if err != nil {
		return nil, err
	}
	h := &head{}
	if err := h.parseStatus(line); err != nil {
		return nil, err
	}
	if h.header, err = readFields(br, lim, scratch); err != nil {
		return nil, err
	}
	return h, nil
}

// readLine reads one CRLF-terminated line (without the CRLF), charging its
// length to lim. A bare LF, a CR elsewhere in the line or a NUL is refused.
func readLine(br *bufio.Reader, lim *limits) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: a line longer than the read buffer", ErrHeaderTooLarge)
	}
	if err != nil {
		return nil, err
	}
	lim.maxBytes -= len(line)
	if lim.maxBytes < 0 {
		return nil, fmt.Errorf("%w: more than the byte limit", ErrHeaderTooLarge)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, malformed("a line ends in a bare LF")
	}
	line = line[:len(line)-2]
	for _, c := range line {
		if c == '\r' || c == 0 {
			return nil, malformed("a line holds a CR or NUL")
		}
	}
	return line, nil
}

func (h *head) parseStatus(line []byte) error {
	const p = "HTTP/1."
	if len(line) < len(p)+1+4 || string(line[:len(p)]) != p || line[len(p)+1] != ' ' {
		return malformed("status line %q", clip(line))
	}
	switch line[len(p)] {
	case '0':
		h.minor = 0
	case '1':
		h.minor = 1
	default:
		return malformed("version in status line %q", clip(line))
	}
	rest := line[len(p)+2:]
	code := 0
	for i := 0; i < 3; i++ {
		if i >= len(rest) || rest[i] < '0' || rest[i] > '9' {
			return malformed("status code in %q", clip(line))
		}
		code = code*10 + int(rest[i]-'0')
	}
	if code < 100 || len(rest) > 3 && rest[3] != ' ' {
		return malformed("status code in %q", clip(line))
	}
	h.status = code
	if code >= 200 {
		h.statusLine = string(rest)
		if len(rest) == 3 {
			h.statusLine += " "
		}
	}
	return nil
}

// readFields reads a header or trailer section up to its empty line. All
// names and values share one string allocation.
func readFields(br *bufio.Reader, lim *limits, scratch *[]byte) (http.Header, error) {
	buf := (*scratch)[:0]
	n := 0
	for {
		line, err := readLine(br, lim)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, malformed("obs-fold (a folded header line)")
		}
		if n++; n > lim.maxFields {
			return nil, fmt.Errorf("%w: more than %d fields", ErrHeaderTooLarge, lim.maxFields)
		}
		buf = append(buf, line...)
		buf = append(buf, '\n')
	}
	*scratch = buf
	if n == 0 {
		return http.Header{}, nil
	}
	all := string(buf)
	hdr := make(http.Header, n)
	values := make([]string, n) // one backing array for single-valued fields
	for len(all) > 0 {
		i := strings.IndexByte(all, '\n')
		line := all[:i]
		all = all[i+1:]
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, malformed("a header line without a field name")
		}
		name, value := line[:colon], strings.Trim(line[colon+1:], " \t")
		if !validName(name) {
			return nil, malformed("field name %q", clip([]byte(name)))
		}
		for j := 0; j < len(value); j++ {
			if c := value[j]; c < ' ' && c != '\t' || c == 0x7f {
				return nil, malformed("a control character in field %q", name)
			}
		}
		key := canonical(name)
		if vs, ok := hdr[key]; ok {
			hdr[key] = append(vs, value)
			continue
		}
		values[0] = value
		hdr[key] = values[:1:1]
		values = values[1:]
	}
	return hdr, nil
}

// canonical returns the canonical form of a header name without allocating
// for the common names.
func canonical(name string) string {
	if c, ok := commonNames[name]; ok {
		return c
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"Content-Type", "Content-Length", "Date", "Server", "Connection",
		"Transfer-Encoding", "Cache-Control", "Etag", "Last-Modified", "Vary", "Location",
		"Set-Cookie", "Keep-Alive", "Trailer", "Content-Encoding", "Expires", "X-Request-Id",
		"Access-Control-Allow-Origin", "Www-Authenticate", "Retry-After", "Link"} {
		m[n] = n
		m[strings.ToLower(n)] = n
	}
	return m
}()

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return s != ""
}

func isTchar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// frame decides how the body of a final response is delimited (RFC 9112
// section 6.3), refusing every ambiguous case.
func (h *head) frame(method string) error {
	h.close = h.minor == 0 || hasToken(h.header["Connection"], "close")
	te, hasTE := h.header["Transfer-Encoding"]
	cl, hasCL := h.header["Content-Length"]
	if hasTE && hasCL {
		return malformed("both Transfer-Encoding and Content-Length")
	}
	if hasTE && h.minor == 0 {
		return malformed("Transfer-Encoding in an HTTP/1.0 response")
	}
	if hasTE && (len(te) != 1 || !strings.EqualFold(te[0], "chunked")) {
		return malformed("Transfer-Encoding %q: only a single \"chunked\" is accepted", clip([]byte(strings.Join(te, ","))))
	}
	length := int64(-1)
	if hasCL {
		if len(cl) != 1 {
			return malformed("%d Content-Length fields", len(cl))
		}
		n, ok := parseLength(cl[0])
		if !ok {
			return malformed("Content-Length %q", clip([]byte(cl[0])))
		}
		length = n
	}
	switch {
	case method == http.MethodHead || h.status == http.StatusNoContent || h.status == http.StatusNotModified:
		h.framing = framingNone
	case hasTE:
		h.framing = framingChunked
	case hasCL:
		h.framing, h.length = framingLength, length
	default:
		h.framing, h.close = framingClose, true
	}
	return nil
}

// parseLength reads 1*DIGIT into a non-negative int64.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 { // 18 digits always fit in an int64
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// hasToken reports whether a comma-separated field holds token (any case).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.Trim(t, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// clip bounds what of a malformed line goes into an error message.
func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
