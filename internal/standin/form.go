package standin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// form is a decoded JSON object body being validated field by field, collecting DRF-style
// messages rather than stopping at the first problem, as a DRF serializer does.
type form struct {
	raw  map[string]json.RawMessage
	errs fieldErrors
}

// readForm reads and decodes the POST body of r. It answers 415 for a body that is not JSON,
// 413 past the size limit and 400 for malformed JSON or a JSON value that is not an object. A
// missing Content-Type is taken as JSON (DRF would see no data at all), and an empty body as {}.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (*form, *response) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			resp := detail(http.StatusUnsupportedMediaType, "Unsupported media type "+strconv.Quote(ct)+" in request.")
			return nil, &resp
		}
	}
	body := r.Body
	if body == nil { // a server request always has one; a hand-built one may not
		body = http.NoBody
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			resp := detail(http.StatusRequestEntityTooLarge,
				"Request body is larger than "+strconv.FormatInt(s.maxBody, 10)+" bytes.")
			return nil, &resp
		}
		resp := detail(http.StatusBadRequest, "Could not read the request body.")
		return nil, &resp
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		data = []byte("{}")
	}
	if !json.Valid(data) {
		resp := detail(http.StatusBadRequest, "JSON parse error - the body is not valid JSON.")
		return nil, &resp
	}
	f := &form{errs: fieldErrors{}}
	if data[0] != '{' {
		f.errs.add("non_field_errors", "Invalid data. Expected a dictionary, but got "+pyType(data)+".")
		resp := f.errs.response()
		return nil, &resp
	}
	if err := json.Unmarshal(data, &f.raw); err != nil {
		resp := detail(http.StatusBadRequest, "JSON parse error - the body is not valid JSON.")
		return nil, &resp
	}
	return f, nil
}

// pyType names the Python type DRF would report for a JSON value.
func pyType(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "str"
	case 't', 'f':
		return "bool"
	case 'n':
		return "NoneType"
	case '[':
		return "list"
	case '{':
		return "dict"
	}
	if bytes.ContainsAny(raw, ".eE") {
		return "float"
	}
	return "int"
}

const (
	msgRequired = "This field is required."
	msgNull     = "This field may not be null."
	msgBlank    = "This field may not be blank."
)

// field returns the raw value of name, or nil when it is absent or null; a null or absent field
// that is required is reported.
func (f *form) field(name string, required bool) json.RawMessage {
	raw, ok := f.raw[name]
	switch {
	case !ok:
		if required {
			f.errs.add(name, msgRequired)
		}
		return nil
	case bytes.Equal(raw, []byte("null")):
		f.errs.add(name, msgNull)
		return nil
	}
	return raw
}

// text reads a string field. A required one is trimmed and may not be blank (DRF's CharField
// defaults). numbersOK also takes a JSON number as its text, as CharField does, for fields like
// a channel's bitrate that callers naturally send as numbers.
func (f *form) text(name string, required, numbersOK bool, def string) string {
	raw := f.field(name, required)
	if raw == nil {
		return def
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			f.errs.add(name, "Not a valid string.")
			return def
		}
	} else if numbersOK && pyType(raw) == "int" {
		s = string(raw)
	} else {
		f.errs.add(name, "Not a valid string.")
		return def
	}
	if required {
		s = strings.TrimSpace(s)
		if s == "" {
			f.errs.add(name, msgBlank)
		}
	}
	return s
}

// boolean reads an optional boolean field; only JSON true and false are taken.
func (f *form) boolean(name string, def bool) bool {
	raw := f.field(name, false)
	if raw == nil {
		return def
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		f.errs.add(name, "Must be a valid boolean.")
		return def
	}
	return b
}

// integer reads an integer field within [lo, hi]; only JSON integers are taken.
func (f *form) integer(name string, required bool, def, lo, hi int) int {
	raw := f.field(name, required)
	if raw == nil {
		return def
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		f.errs.add(name, "A valid integer is required.")
		return def
	}
	switch {
	case n < lo:
		f.errs.add(name, "Ensure this value is greater than or equal to "+strconv.Itoa(lo)+".")
	case n > hi:
		f.errs.add(name, "Ensure this value is less than or equal to "+strconv.Itoa(hi)+".")
	}
	return n
}

// ref reads a primary-key reference (DRF's PrimaryKeyRelatedField). A nullable one may be null
// or absent; exists says whether the referenced object is there.
func (f *form) ref(name string, nullable bool, exists func(int) bool) *int {
	raw, ok := f.raw[name]
	switch {
	case !ok && nullable:
		return nil
	case nullable && bytes.Equal(raw, []byte("null")):
		return nil
	}
	raw = f.field(name, true)
	if raw == nil {
		return nil
	}
	var id int
	if pyType(raw) != "int" || json.Unmarshal(raw, &id) != nil {
		f.errs.add(name, "Incorrect type. Expected pk value, received "+pyType(raw)+".")
		return nil
	}
	if !exists(id) {
		f.errs.add(name, `Invalid pk "`+strconv.Itoa(id)+`" - object does not exist.`)
		return nil
	}
	return &id
}

// created encodes v as the 201 answer to a POST.
func created(v any) response {
	b, err := encodeJSON(v)
	if err != nil {
		return internalError()
	}
	return response{status: http.StatusCreated, body: b}
}
