package proxy

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzStationBody checks the station reader of create bodies against the
// standard library's own readers: whatever station it accepts is the one
// encoding/json (for JSON) or net/url (for a form) finds in the same body,
// once, and a body it accepts is one both would accept at all. It never
// panics, whatever the body.
func FuzzStationBody(f *testing.F) {
	for _, s := range []struct {
		ct, body string
	}{
		{"application/json", `{"name": "x", "server": 3}`},
		{"application/json", `{"server": 3, "server": 4}`},
		{"application/json", `{"server": "4"}`},
		{"application/json", `{"server": 4.0}`},
		{"application/json", `{"a": {"server": 4}, "server": 3}`},
		{"application/json", `{"\u0073erver": 4}`},
		{"application/json", `{"server": 3} {"server": 4}`},
		{"application/json; charset=utf-8", `{"list": [1, [2, {"b": null}]], "server": 12}`},
		{"application/x-www-form-urlencoded", "name=x&server=3"},
		{"application/x-www-form-urlencoded", "%73erver=4&server=3"},
		{"text/plain", `{"server": 3}`},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		in := &stationInput{contentType: []string{ct}, body: body, hasBody: len(body) > 0}
		id, p := bodyStation(in)
		if p != nil {
			if id != 0 || p.msg == "" || stationCode(p.result) == "" {
				t.Fatalf("refusal %+v with id %d", p, id)
			}
			return
		}
		if id < 1 {
			t.Fatalf("accepted station %d", id)
		}
		want := strconv.Itoa(id)
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) && json.Valid(body) {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
			if n, ok := m["server"].(json.Number); !ok || n.String() != want {
				t.Fatalf("accepted station %d from %q; encoding/json reads server %v", id, body, m["server"])
			}
			return
		}
		// The broadcaster separates form fields by & only; net/url refuses
		// a ; outright, so it is escaped for the oracle.
		q, err := url.ParseQuery(strings.ReplaceAll(string(body), ";", "%3B"))
		if err != nil || len(q["server"]) != 1 || q["server"][0] != want {
			t.Fatalf("accepted station %d from form %q; net/url reads %v (%v)", id, body, q["server"], err)
		}
	})
}

// BenchmarkStationQuery is the station check of a read's query.
func BenchmarkStationQuery(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if id, ok, p := queryStation("limit=1&offset=0&server=3"); !ok || p != nil || id != 3 {
			b.Fatal("refused")
		}
	}
}

// BenchmarkStationJSONBody is the station check of a create's JSON body.
func BenchmarkStationJSONBody(b *testing.B) {
	in := &stationInput{contentType: []string{"application/json"}, body: []byte(`{"name": "Late night", "is_random": true, "server": 3}`), hasBody: true}
	b.ReportAllocs()
	for b.Loop() {
		if id, p := bodyStation(in); p != nil || id != 3 {
			b.Fatal("refused")
		}
	}
}
