package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/scgate/scgate/proxy/policy"
)

// Station scoping: a caller whose rule set names stations (policy.Set.Stations)
// may only touch those radio servers. The broadcaster says which station a
// request is about in its own terms: the server query parameter of a read, the
// server field of a create request's body. The stage below finds that number
// the way the broadcaster would, refuses every request in which it is absent,
// repeated, spelt in a way two parsers could read differently, or outside the
// list, and never guesses. Routes that name no station (an object addressed by
// its id, a login) are refused to scoped callers: scgate cannot tell whose
// object an id is without asking the broadcaster. docs/reference.md has the
// table of routes.

// The results of the station stage: the values of the result label of
// scgate_station_checks_total and of the access log's station_check field.
const (
	StationAllowed   = "allowed"   // the named station is in the caller's list
	StationMissing   = "missing"   // no station was named
	StationMalformed = "malformed" // named in a way that is refused (repeated, not an integer, ...)
	StationForbidden = "forbidden" // a station outside the caller's list
	StationRoute     = "route"     // a route that scoped callers may not use
	StationTooLarge  = "too_large" // a body larger than can be checked
	StationUnchecked = "unchecked" // the buffer budget was spent: the body could not be held
)

// StationDecision is the station stage's part of a Decision.
type StationDecision struct {
	// Scoped is true when the caller's rule set names stations; the other
	// fields are zero otherwise.
	Scoped bool
	// Stations are the stations the caller may touch.
	Stations []int
	// Rule says how the route is governed: "query" (a read naming server
	// in its query), "body" (a create naming server in its body) or
	// "refused" (scoped callers may not use the route).
	Rule string
	// Result is one of the Station... results; "" when the stage did not
	// run (the request was refused before it).
	Result string
	// Station is the station the request named; 0 when none was found.
	Station int
}

// How a route is governed for scoped callers.
const (
	stationByQuery = "query"
	stationByBody  = "body"
	stationRefused = "refused"
)

// stationCollections are the API's lists of station-owned objects, which
// take server=<id> on GET; the map value says whether POST creates an object
// whose body names its server.
var stationCollections = map[string]bool{
	"history":       false,
	"channels":      true,
	"playlists":     true,
	"grid":          true,
	"authlisteners": false,
}

// stationRule says how method on the normalised path is governed.
func stationRule(method, path string) string {
	rest, ok := strings.CutPrefix(path, "/api/v2/")
	if !ok {
		return stationRefused
	}
	name := strings.TrimSuffix(rest, "/")
	creates, ok := stationCollections[name]
	if !ok {
		// An object by its id, one of its actions or sub-lists, a login,
		// or a route the API does not document.
		return stationRefused
	}
	switch {
	case method == http.MethodGet || method == http.MethodHead:
		return stationByQuery
	case method == http.MethodPost && creates:
		return stationByBody
	}
	return stationRefused
}

// stationInput is what the stage reads of a request: the raw query, and for
// a create request its Content-Type and Content-Encoding headers and body.
type stationInput struct {
	query       string
	contentType []string
	encoding    []string
	body        []byte
	hasBody     bool
}

// stationProblem is a refusal of the stage: its result and a fixed sentence
// for the caller.
type stationProblem struct {
	result string
	msg    string
}

func malformed(msg string) *stationProblem { return &stationProblem{StationMalformed, msg} }

// checkStation runs the station stage for a caller whose rule set is scoped.
// It reads the body when the route's rule needs it (within the replay
// buffer's limit), and leaves it buffered for the forward stage.
//
// Station ids are a panel's own: station 3 on one panel is another radio
// than station 3 on the next. A station list does not name its panel, so a
// scoped caller holding keys on several panels is refused rather than
// allowed the listed ids on each of them.
func (h *Handler) checkStation(r *http.Request, st *state, method string, onePanel bool) *gatewayError {
	set := st.rule.Scope
	if !set.Scoped() {
		return nil
	}
	sd := &st.station
	sd.Scoped, sd.Stations = true, set.Stations
	sd.Rule = stationRule(method, st.path)
	var e *gatewayError
	if onePanel {
		e = h.stationStage(r, st, sd, set, method)
	} else {
		e = h.stationRefusal(sd, &stationProblem{StationForbidden, "caller " + quote(st.caller) + " is scoped to stations " +
			stationList(set.Stations) + " but holds keys on several panels, and station ids are each panel's own: " +
			"ask the gateway's operators to give a station-scoped caller a key on one panel only"})
	}
	if e != nil && sd.Result == "" {
		sd.Result = StationMalformed
	}
	if r != nil {
		h.metrics.StationCheck(sd.Result)
	}
	return e
}

func (h *Handler) stationStage(r *http.Request, st *state, sd *StationDecision, set *policy.Set, method string) *gatewayError {
	in := st.explainIn
	if r != nil {
		in = &stationInput{query: r.URL.RawQuery, contentType: r.Header.Values("Content-Type"), encoding: r.Header.Values("Content-Encoding")}
		in.hasBody = r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	}
	if in == nil {
		in = &stationInput{}
	}
	if sd.Rule == stationRefused {
		sd.Result = StationRoute
		return newError(CodeStationForbidden, http.StatusForbidden,
			"caller "+quote(st.caller)+" is scoped to stations "+stationList(set.Stations)+" and may not send "+quote(method)+" to "+quote(st.path)+
				": scgate cannot tell which station this route touches (see the station rules in docs/reference.md)", nil)
	}
	q, qok, p := queryStation(in.query)
	if p != nil {
		return h.stationRefusal(sd, p)
	}
	if sd.Rule == stationByQuery {
		if in.hasBody {
			return h.stationRefusal(sd, malformed("a scoped read carries no body; send the station as ?server=<id> only"))
		}
		if !qok {
			return h.stationRefusal(sd, &stationProblem{StationMissing, "caller " + quote(st.caller) + " is scoped to stations " + stationList(set.Stations) + ": name one of them with ?server=<id>"})
		}
		return h.stationAllow(sd, set, q, st)
	}
	// A create: the body names the station.
	if r != nil {
		if e := h.readStationBody(r, st, sd, in); e != nil {
			return e
		}
	}
	b, p := bodyStation(in)
	if p != nil {
		if p.result == StationMissing {
			p.msg = "caller " + quote(st.caller) + " is scoped to stations " + stationList(set.Stations) + ": " + p.msg
		}
		return h.stationRefusal(sd, p)
	}
	if qok && q != b {
		for _, id := range []int{q, b} {
			if !set.AllowsStation(id) {
				return h.stationAllow(sd, set, id, st)
			}
		}
		return h.stationRefusal(sd, malformed("the query names station "+strconv.Itoa(q)+" and the body station "+strconv.Itoa(b)+"; name one station"))
	}
	return h.stationAllow(sd, set, b, st)
}

func (h *Handler) stationRefusal(sd *StationDecision, p *stationProblem) *gatewayError {
	sd.Result = p.result
	return newError(stationCode(p.result), stationStatus(p.result), p.msg, nil)
}

func (h *Handler) stationAllow(sd *StationDecision, set *policy.Set, id int, st *state) *gatewayError {
	sd.Station = id
	if set.AllowsStation(id) {
		sd.Result = StationAllowed
		return nil
	}
	sd.Result = StationForbidden
	return newError(CodeStationForbidden, http.StatusForbidden,
		"caller "+quote(st.caller)+" may not touch station "+strconv.Itoa(id)+": its rule set "+quote(set.Name)+" is scoped to stations "+stationList(set.Stations), nil)
}

func stationCode(result string) string {
	switch result {
	case StationMissing:
		return CodeStationMissing
	case StationForbidden, StationRoute:
		return CodeStationForbidden
	case StationTooLarge:
		return CodePayloadTooLarge
	case StationUnchecked:
		return CodeStationUnchecked
	}
	return CodeStationMalformed
}

func stationStatus(result string) int {
	switch result {
	case StationForbidden, StationRoute:
		return http.StatusForbidden
	case StationTooLarge:
		return http.StatusRequestEntityTooLarge
	case StationUnchecked:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func stationList(ids []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(id))
	}
	b.WriteByte(']')
	return b.String()
}

// stationBodyLimit is the largest body the stage reads: the replay buffer's
// limit (the body is then kept for a retry), or its default when replays
// are off.
func (h *Handler) stationBodyLimit() int64 {
	limit := h.replayBody
	if limit <= 0 {
		limit = DefaultReplayBodyBytes
	}
	return min(limit, h.maxBody)
}

// readStationBody reads r's body, within stationBodyLimit and the buffer
// budget, into in.body, and leaves it buffered as prepareReplay would.
func (h *Handler) readStationBody(r *http.Request, st *state, sd *StationDecision, in *stationInput) *gatewayError {
	if !in.hasBody {
		return nil
	}
	limit := h.stationBodyLimit()
	tooBig := &stationProblem{StationTooLarge, "the request body is larger than a station-scoped caller may send (" + strconv.FormatInt(limit, 10) + " bytes): its station could not be checked"}
	if r.ContentLength > limit {
		return h.stationRefusal(sd, tooBig)
	}
	reserve := limit + 1
	if r.ContentLength > 0 {
		reserve = r.ContentLength
	}
	if !h.budget.take(reserve, useReplay, st) {
		return h.stationRefusal(sd, &stationProblem{StationUnchecked, "the gateway is holding as many request bodies as it may; the station of this one could not be checked. Retry shortly"})
	}
	st.retry.reserved = reserve
	var b bytes.Buffer
	b.Grow(int(reserve) + bytes.MinRead)
	_, err := b.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var mb *http.MaxBytesError
		switch {
		case errors.As(err, &mb):
			return h.stationRefusal(sd, tooBig)
		case r.Context().Err() != nil:
			sd.Result = StationMalformed
			return newError("client_closed", statusClientClosed, "the caller went away", err)
		}
		return h.stationRefusal(sd, malformed("the request body could not be read completely"))
	}
	if int64(b.Len()) > limit {
		return h.stationRefusal(sd, tooBig)
	}
	buf := b.Bytes()
	in.body = buf
	// Forwarded from this buffer, so the broadcaster gets the bytes that
	// were checked. It is kept for a retry only when replays are on.
	st.retry.body = buf
	r.Body, _ = st.retry.getBody()
	r.ContentLength = int64(len(buf))
	r.TransferEncoding = nil
	if h.replayBody > 0 {
		st.retry.replayable = true
		r.GetBody = st.retry.getBody
	}
	return nil
}

// maxStationDigits bounds the digits of a station ID (policy.MaxStationID
// has 10).
const maxStationDigits = 10

// parseStationID reads a station ID written canonically: decimal digits,
// no sign, no leading zero, no space, no fraction or exponent. Anything
// else is refused rather than read the way one parser or another would.
func parseStationID(s string) (int, bool) {
	if s == "" || len(s) > maxStationDigits || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > policy.MaxStationID {
		return 0, false
	}
	return n, true
}

// isServerName reports whether a parameter or field name is "server", and
// whether it is a near-spelling ("Server", " server") that one reader could
// take for it and another not.
func isServerName(name string) (exact, near bool) {
	if name == "server" {
		return true, false
	}
	return false, strings.EqualFold(strings.TrimSpace(name), "server")
}

// queryStation reads the server parameter of a query string as the
// broadcaster would (names and values percent-decoded, + as a space). It
// returns ok=false when there is none.
func queryStation(raw string) (id int, ok bool, p *stationProblem) {
	return formStation(raw, "query")
}

// formStation reads the server field of an application/x-www-form-urlencoded
// text: exactly once, canonical.
func formStation(raw, where string) (id int, ok bool, p *stationProblem) {
	var value string
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return 0, false, malformed("a parameter name of the " + where + " is not percent-encoded correctly")
		}
		exact, near := isServerName(name)
		if near {
			return 0, false, malformed("the " + where + " has a parameter spelt like server but not exactly server; write server")
		}
		if !exact {
			// Another field's value must be well-formed too: a reader that
			// refuses a bad escape anywhere could read this text otherwise.
			if _, err := url.QueryUnescape(v); err != nil {
				return 0, false, malformed("a parameter value of the " + where + " is not percent-encoded correctly")
			}
			continue
		}
		if ok {
			return 0, false, malformed("the " + where + " names server more than once; name one station")
		}
		if value, err = url.QueryUnescape(v); err != nil {
			return 0, false, malformed("the server value of the " + where + " is not percent-encoded correctly")
		}
		ok = true
	}
	if !ok {
		return 0, false, nil
	}
	n, good := parseStationID(value)
	if !good {
		return 0, false, malformed("the server value of the " + where + " is not a station ID; write it as plain decimal digits, e.g. server=3")
	}
	return n, true, nil
}

// bodyStation reads the server field of a create request's body: JSON or a
// form, UTF-8, not encoded, named exactly once.
func bodyStation(in *stationInput) (int, *stationProblem) {
	missing := &stationProblem{StationMissing, `a create request names its station in the body: {"server": <id>} in JSON, or server=<id> in a form`}
	if len(in.encoding) != 0 {
		return 0, malformed("a station-scoped caller's body may not carry a Content-Encoding: the station could not be read")
	}
	if len(in.contentType) == 0 && len(in.body) == 0 {
		return 0, missing
	}
	if len(in.contentType) != 1 {
		return 0, malformed("send one Content-Type: application/json or application/x-www-form-urlencoded")
	}
	mt, params, err := mime.ParseMediaType(in.contentType[0])
	if err != nil {
		return 0, malformed("the Content-Type cannot be read; send application/json or application/x-www-form-urlencoded")
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return 0, malformed("the Content-Type may carry only charset=utf-8")
		}
	}
	if !utf8.Valid(in.body) {
		return 0, malformed("the body is not valid UTF-8")
	}
	switch mt {
	case "application/json":
		if len(bytes.TrimSpace(in.body)) == 0 {
			return 0, missing
		}
		return jsonStation(in.body)
	case "application/x-www-form-urlencoded":
		id, ok, p := formStation(string(in.body), "form body")
		if p != nil {
			return 0, p
		}
		if !ok {
			return 0, missing
		}
		return id, nil
	}
	return 0, malformed("a station-scoped caller sends application/json or application/x-www-form-urlencoded bodies only")
}

// maxJSONDepth bounds the nesting the JSON reader walks.
const maxJSONDepth = 32

// jsonStation reads "server" from a JSON object body: a top-level field,
// present once, an integer written canonically. Duplicate keys anywhere,
// a server field in a nested object, trailing data and anything but an
// object are refused.
func jsonStation(body []byte) (int, *stationProblem) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return 0, malformed("the body is not valid JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return 0, malformed("the JSON body must be an object")
	}
	id, found, p := walkObject(dec, 1)
	if p != nil {
		return 0, p
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, malformed("the JSON body has data after its object")
	}
	if !found {
		return 0, &stationProblem{StationMissing, `a create request names its station in the body: {"server": <id>} in JSON, or server=<id> in a form`}
	}
	return id, nil
}

// walkObject reads the members of an object whose '{' was read, up to its
// '}'. At depth 1 it returns the server field.
func walkObject(dec *json.Decoder, depth int) (id int, found bool, p *stationProblem) {
	if depth > maxJSONDepth {
		return 0, false, malformed("the JSON body is nested too deeply")
	}
	seen := make(map[string]struct{})
	for {
		tok, err := dec.Token()
		if err != nil {
			return 0, false, malformed("the body is not valid JSON")
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return id, found, nil
		}
		key, ok := tok.(string)
		if !ok {
			return 0, false, malformed("the body is not valid JSON")
		}
		if _, dup := seen[key]; dup {
			return 0, false, malformed("the JSON body has the key " + strconv.Quote(truncate(key)) + " more than once")
		}
		seen[key] = struct{}{}
		exact, near := isServerName(key)
		switch {
		case near:
			return 0, false, malformed("the JSON body has a key spelt like server but not exactly server")
		case exact && depth > 1:
			return 0, false, malformed("the JSON body has a server field inside a nested value; name the station once, at the top level")
		case exact:
			vt, err := dec.Token()
			if err != nil {
				return 0, false, malformed("the body is not valid JSON")
			}
			num, isNum := vt.(json.Number)
			n, good := parseStationID(string(num))
			if !isNum || !good {
				return 0, false, malformed(`the server field is not a station ID; write it as a plain JSON integer, e.g. "server": 3`)
			}
			id, found = n, true
		default:
			if p := skipValue(dec, depth); p != nil {
				return 0, false, p
			}
		}
	}
}

// skipValue reads one value, checking the objects inside it.
func skipValue(dec *json.Decoder, depth int) *stationProblem {
	tok, err := dec.Token()
	if err != nil {
		return malformed("the body is not valid JSON")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		_, _, p := walkObject(dec, depth+1)
		return p
	case '[':
		if depth+1 > maxJSONDepth {
			return malformed("the JSON body is nested too deeply")
		}
		for dec.More() {
			if p := skipValue(dec, depth+1); p != nil {
				return p
			}
		}
		if _, err := dec.Token(); err != nil {
			return malformed("the body is not valid JSON")
		}
		return nil
	}
	return malformed("the body is not valid JSON")
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
