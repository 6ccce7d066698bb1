package standin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// defaultLimit is the page size when a request gives no limit. The vendor does not document one;
// 100 keeps a whole seeded server's channels on one page and history on two.
const defaultLimit = 100

// query holds the validated list parameters shared by the endpoints.
type query struct {
	values    url.Values
	server    int
	hasServer bool
	limit     int
	offset    int
}

// fieldErrors is DRF's validation-error body: field name to messages. encoding/json sorts the
// keys, so the body is stable.
type fieldErrors map[string][]string

func (fe fieldErrors) add(field, msg string) { fe[field] = append(fe[field], msg) }

func (fe fieldErrors) response() response {
	b, err := encodeJSON(map[string][]string(fe))
	if err != nil {
		return internalError()
	}
	return response{status: http.StatusBadRequest, body: b}
}

// parseQuery reads server (and, when paginated, limit and offset) the way Django reads a query
// string: a repeated parameter counts by its last value, malformed pairs are skipped.
func parseQuery(r *http.Request, paginated bool) (query, fieldErrors) {
	q := query{values: r.URL.Query(), limit: defaultLimit}
	errs := fieldErrors{}
	var ok bool
	q.server, ok = intParam(q.values, "server", 0, errs)
	q.hasServer = ok
	if paginated {
		if l, ok := intParam(q.values, "limit", 1, errs); ok {
			q.limit = l
		}
		q.offset, _ = intParam(q.values, "offset", 0, errs)
	}
	if len(errs) > 0 {
		return q, errs
	}
	return q, nil
}

// intParam reads an integer parameter no lower than minimum. It reports whether the parameter
// was given and valid; an invalid one is added to errs.
func intParam(v url.Values, name string, minimum int, errs fieldErrors) (int, bool) {
	vals := v[name]
	if len(vals) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(vals[len(vals)-1])
	if err != nil {
		errs.add(name, "A valid integer is required.")
		return 0, false
	}
	if n < minimum {
		errs.add(name, "Ensure this value is greater than or equal to "+strconv.Itoa(minimum)+".")
		return 0, false
	}
	return n, true
}

// page renders DRF's limit/offset envelope around the already-encoded items of the whole
// filtered list. next and previous are absolute URLs built from the request, as DRF's
// build_absolute_uri does: the scheme from the connection, the host from the Host header, the
// other parameters kept and the query sorted. Like DRF, a previous link that would have offset
// 0 drops the offset parameter instead. When origin is not nil, each encodedMarker in the items
// is replaced by it on the way (see originMarker).
func page(r *http.Request, q query, items [][]byte, origin []byte) []byte {
	count := len(items)
	lo := min(q.offset, count)
	hi := lo + min(q.limit, count-lo)

	size := 128
	for _, it := range items[lo:hi] {
		size += len(it) + 1 + 3*len(origin) // history entries carry three cover URLs
	}
	b := make([]byte, 0, size)
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, int64(count), 10)
	b = append(b, `,"next":`...)
	if q.limit < count-q.offset { // offset+limit < count, written so a huge offset cannot overflow
		b = appendJSONString(b, pageURL(r, q.values, q.limit, q.offset+q.limit))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"previous":`...)
	if q.offset > 0 {
		b = appendJSONString(b, pageURL(r, q.values, q.limit, max(q.offset-q.limit, 0)))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"results":`...)
	if origin == nil {
		b = appendArray(b, items[lo:hi])
	} else {
		b = appendExpandedArray(b, items[lo:hi], origin)
	}
	return append(b, '}')
}

// appendExpandedArray is appendArray with every encodedMarker replaced by origin, done while
// copying so that a page is written once rather than built and then rewritten.
func appendExpandedArray(b []byte, items [][]byte, origin []byte) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		for {
			j := bytes.Index(it, []byte(encodedMarker))
			if j < 0 {
				break
			}
			b = append(b, it[:j]...)
			b = append(b, origin...)
			it = it[j+len(encodedMarker):]
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

func pageURL(r *http.Request, values url.Values, limit, offset int) string {
	v := make(url.Values, len(values)+2)
	for k, vs := range values {
		v[k] = vs
	}
	v.Set("limit", strconv.Itoa(limit))
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	} else {
		delete(v, "offset")
	}
	return origin(r) + r.URL.Path + "?" + v.Encode()
}

// origin is scheme://host of the request as the stand-in saw it, the base of every absolute URL
// it emits (page links, cover images).
func origin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// appendArray appends the JSON array of already-encoded items.
func appendArray(b []byte, items [][]byte) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

// encodeJSON encodes v compactly without HTML escaping, as DRF's renderer does.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func appendJSONString(b []byte, s string) []byte {
	enc, err := encodeJSON(s)
	if err != nil { // cannot happen for a string; keep the body valid JSON regardless
		return append(b, `""`...)
	}
	return append(b, enc...)
}

func internalError() response {
	return detail(http.StatusInternalServerError, "A server error occurred.")
}
