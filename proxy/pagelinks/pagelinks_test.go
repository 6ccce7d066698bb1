package pagelinks

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
)

const testOrigin = "https://gw.example"

// replaceOrigin is the gateway's rule: an absolute link keeps its path and
// query on the gateway's origin.
func replaceOrigin(link string) (string, bool) {
	u, err := url.Parse(link)
	if err != nil || u.Host == "" {
		return "", false
	}
	return testOrigin + u.RequestURI(), true
}

// reference is the rewrite done the obvious way: decode the whole body and
// splice new values for the top-level next/previous strings. Anything that is
// not such an object is returned unchanged. It holds the body; the Reader
// must give the same bytes for every valid JSON object.
func reference(body []byte, replace func(string) (string, bool), maxReplacement int) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return body
	}
	type splice struct {
		start, end int
		value      []byte
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
		if key != "next" && key != "previous" || len(raw) > MaxLinkBytes {
			continue
		}
		var link string
		if json.Unmarshal(raw, &link) != nil {
			continue // null or not a string
		}
		with, ok := replace(link)
		if !ok {
			continue
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(with)
		value := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		if len(value) > maxReplacement {
			continue
		}
		start := keyEnd + bytes.Index(body[keyEnd:], raw)
		splices = append(splices, splice{start, start + len(raw), value})
	}
	out := []byte{}
	last := 0
	for _, s := range splices {
		out = append(append(out, body[last:s.start]...), s.value...)
		last = s.end
	}
	return append(out, body[last:]...)
}

// chunked hands out its data a few bytes at a time, so that every boundary
// falls somewhere in the middle of a token.
type chunked struct {
	data   []byte
	sizes  []int
	i      int
	err    error // returned after the data, instead of io.EOF
	closed bool
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.sizes) > 0 {
		n = max(1, c.sizes[c.i%len(c.sizes)])
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func (c *chunked) Close() error { c.closed = true; return nil }

type splice struct {
	start, end int64
	with       []byte
}

// rewrite runs body through a Reader fed in chunks of the given sizes and
// returns the output, the splices it made and the largest footprint seen.
func rewrite(t testing.TB, body []byte, sizes []int, readSize int) ([]byte, []splice, int) {
	t.Helper()
	src := &chunked{data: body, sizes: sizes}
	released := 0
	r := NewReader(src, Options{Replace: replaceOrigin, Release: func() { released++ }})
	var splices []splice
	r.onSplice = func(start, end int64, with []byte) {
		splices = append(splices, splice{start, end, append([]byte(nil), with...)})
	}
	var out []byte
	buf := make([]byte, readSize)
	peak := 0
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		peak = max(peak, cap(r.in)+cap(r.out)+cap(r.held))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	if released != 1 {
		t.Fatalf("Release called %d times at the end of the body, want 1", released)
	}
	if err := r.Close(); err != nil || !src.closed || released != 1 {
		t.Fatalf("Close: %v, source closed %v, released %d times", err, src.closed, released)
	}
	return out, splices, peak
}

func TestReaderRewritesTopLevelLinksOnly(t *testing.T) {
	up := "https://radio.example:1030"
	for _, c := range []struct{ name, in, want string }{
		{"envelope",
			`{"count":3,"next":"` + up + `/api/v2/history/?limit=1&offset=2","previous":null,"results":[{"next":"` + up + `/x"}]}`,
			`{"count":3,"next":"` + testOrigin + `/api/v2/history/?limit=1&offset=2","previous":null,"results":[{"next":"` + up + `/x"}]}`},
		{"escaped origin", `{"next":"https:\/\/radio.example:1030\/a\/?b=1"}`, `{"next":"` + testOrigin + `/a/?b=1"}`},
		{"escaped key", `{"ne\u0078t":"//h/a","pre\u0076ious":"http://h/b"}`, `{"ne\u0078t":"` + testOrigin + `/a","pre\u0076ious":"` + testOrigin + `/b"}`},
		{"whitespace", " \n{ \"next\" :\t\"http://h/a\" ,\r\n\"previous\": \"http://h/b\" } \n", " \n{ \"next\" :\t\"" + testOrigin + "/a\" ,\r\n\"previous\": \"" + testOrigin + "/b\" } \n"},
		{"relative link stays", `{"next":"/api/v2/history/?offset=2"}`, `{"next":"/api/v2/history/?offset=2"}`},
		{"nulls and other types", `{"next":null,"previous":3,"x":{"next":"http://h/a"}}`, `{"next":null,"previous":3,"x":{"next":"http://h/a"}}`},
		{"braces and quotes in strings", `{"a":"}{\"next\":\"http://h/a\"","next":"http://h/b","b":["]","{"]}`, `{"a":"}{\"next\":\"http://h/a\"","next":"` + testOrigin + `/b","b":["]","{"]}`},
		{"nested next key", `{"results":[{"next":"http://h/a","previous":"http://h/b"}],"meta":{"next":"http://h/c"}}`, `{"results":[{"next":"http://h/a","previous":"http://h/b"}],"meta":{"next":"http://h/c"}}`},
		{"nested object before the link", `{"a":{"b":{"c":[1,{"d":"e"}]}},"next":"http://h/a"}`, `{"a":{"b":{"c":[1,{"d":"e"}]}},"next":"` + testOrigin + `/a"}`},
		{"empty containers before the link", `{"a":[],"b":{},"c":[[],{}],"next":"http://h/a"}`, `{"a":[],"b":{},"c":[[],{}],"next":"` + testOrigin + `/a"}`},
		{"top-level array", `[{"next":"http://h/a"}]`, `[{"next":"http://h/a"}]`},
		{"scalar", `"http://h/a"`, `"http://h/a"`},
		{"empty", ``, ``},
		{"duplicate keys", `{"next":"http://h/a","next":"http://h/b"}`, `{"next":"` + testOrigin + `/a","next":"` + testOrigin + `/b"}`},
		{"trailing data passes", `{"next":"http://h/a"} {"next":"http://h/b"}`, `{"next":"` + testOrigin + `/a"} {"next":"http://h/b"}`},
		{"truncated inside the link", `{"count":1,"next":"http://h/a`, `{"count":1,"next":"http://h/a`},
		{"truncated after the link", `{"next":"http://h/a","results":[1,`, `{"next":"` + testOrigin + `/a","results":[1,`},
		{"broken before the link", `{"a":tru,"next":"http://h/a"}`, `{"a":tru,"next":"http://h/a"}`},
		{"bad escape in the link", `{"next":"http://h/\q"}`, `{"next":"http://h/\q"}`},
		{"control character in the link", "{\"next\":\"http://h/\na\"}", "{\"next\":\"http://h/\na\"}"},
		{"numbers", `{"a":-0.5e+10,"b":0,"c":12E3,"next":"http://h/a","d":[1.0,-2]}`, `{"a":-0.5e+10,"b":0,"c":12E3,"next":"` + testOrigin + `/a","d":[1.0,-2]}`},
		{"bad number", `{"a":01,"next":"http://h/a"}`, `{"a":01,"next":"http://h/a"}`},
		{"html characters kept", `{"next":"http://h/a?x=<b>&y=1"}`, `{"next":"` + testOrigin + `/a?x=<b>&y=1"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, sizes := range [][]int{nil, {1}, {2, 3}, {7}} {
				got, _, _ := rewrite(t, []byte(c.in), sizes, 5)
				if string(got) != c.want {
					t.Fatalf("chunks %v:\n got %s\nwant %s", sizes, got, c.want)
				}
			}
			if json.Valid([]byte(c.in)) {
				if ref := reference([]byte(c.in), replaceOrigin, MaxLinkBytes); string(ref) != c.want {
					t.Fatalf("the reference disagrees with the case: %s", ref)
				}
			}
		})
	}
}

// A link longer than MaxLinkBytes is not held: it passes unchanged, however
// the body is cut.
func TestReaderLeavesOverlongLinks(t *testing.T) {
	long := "http://h/" + strings.Repeat("a", MaxLinkBytes)
	in := `{"next":"` + long + `","previous":"http://h/b"}`
	want := `{"next":"` + long + `","previous":"` + testOrigin + `/b"}`
	for _, sizes := range [][]int{nil, {1000}, {MaxLinkBytes - 5}} {
		got, _, _ := rewrite(t, []byte(in), sizes, 4096)
		if string(got) != want {
			t.Fatalf("chunks %v: got %.200s…", sizes, got)
		}
	}
}

// A body much larger than the window is rewritten while the Reader holds
// no more than Footprint, and it comes out whole.
func TestReaderHoldsAWindowNotTheBody(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"count":100000,"next":"http://h/api/v2/history/?offset=2","previous":"http://h/api/v2/history/","results":[`)
	for i := range 20000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":1,"img_url":"http://h/media/x.jpg","s":"a \"quoted\" {brace} [bracket]","next":"http://h/inner"}`)
	}
	b.WriteString(`]}`)
	in := []byte(b.String())
	got, splices, peak := rewrite(t, in, []int{BufferSize, 3, 50000}, 32<<10)
	want := reference(in, replaceOrigin, MaxLinkBytes)
	if !bytes.Equal(got, want) {
		t.Fatal("the output differs from the reference")
	}
	if len(splices) != 2 {
		t.Fatalf("%d splices, want 2", len(splices))
	}
	if limit := Footprint(MaxLinkBytes); int64(peak) > limit {
		t.Fatalf("held %d bytes at once for a %d-byte body; the bound is %d", peak, len(in), limit)
	}
}

// A replacement longer than MaxReplacement is not made.
func TestReaderBoundsReplacements(t *testing.T) {
	r := NewReader(io.NopCloser(strings.NewReader(`{"next":"http://h/a"}`)), Options{
		Replace:        func(string) (string, bool) { return strings.Repeat("x", 100), true },
		MaxReplacement: 50,
	})
	got, err := io.ReadAll(r)
	if err != nil || string(got) != `{"next":"http://h/a"}` {
		t.Fatalf("%q, %v", got, err)
	}
}

// A source that fails passes its error on after every byte it gave,
// including a link it was holding.
func TestReaderPassesSourceErrors(t *testing.T) {
	boom := errors.New("connection reset")
	src := &chunked{data: []byte(`{"next":"http://h/a`), sizes: []int{4}, err: boom}
	released := false
	r := NewReader(src, Options{Replace: replaceOrigin, Release: func() { released = true }})
	got, err := io.ReadAll(r)
	if !errors.Is(err, boom) || string(got) != `{"next":"http://h/a` {
		t.Fatalf("%q, %v", got, err)
	}
	if !released {
		t.Fatal("the budget was not released at the source's end")
	}
}

// Release happens at Close for a reader abandoned half-way, and only once.
func TestReaderReleasesOnceAtClose(t *testing.T) {
	n := 0
	r := NewReader(io.NopCloser(strings.NewReader(`{"results":[1,2,3]}`)), Options{Replace: replaceOrigin, Release: func() { n++ }})
	if _, err := r.Read(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	_ = r.Close()
	if n != 1 {
		t.Fatalf("released %d times, want 1", n)
	}
}

func BenchmarkReader4MiB(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"count":100000,"next":"http://h/api/v2/history/?offset=2","previous":null,"results":[`)
	for sb.Len() < 4<<20 {
		sb.WriteString(`{"id":1,"img_url":"http://h/media/x.jpg","title":"a \"quoted\" title","n":12345},`)
	}
	sb.WriteString(`{}]}`)
	in := sb.String()
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r := NewReader(io.NopCloser(strings.NewReader(in)), Options{Replace: replaceOrigin})
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
