package pagelinks

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzReader feeds any bytes, cut into any chunks, through a Reader:
//   - it never panics;
//   - for a valid JSON object the output equals reference's;
//   - for any input, the output is the input with only the splices the
//     Reader reported applied, each replacing a whole JSON string value with
//     the gateway's link: every other byte is unchanged and in order;
//   - the output does not depend on how the input is cut or read;
//   - the Reader never holds more than Footprint.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		`{"count":2,"next":"http://radio.example:1030/api/v2/history/?offset=1","previous":null,"results":[{"next":"http://h/x"}]}`,
		`{"next":"https:\/\/radio.example:1030\/a","previous":"//radio.example:1030/b"}`,
		`{"ne\u0078t":"http://h/a","next":"http://h/b"}`,
		`[{"next":"http://h/a"}]`,
		`{"a":"}{\"next\":\"http://h/a\"","next":"http://h/b"}`,
		`{"next":"http://h/a"` + "\n",
		`{"a":[[[{"next":"http://h/a"}]]],"next":"http://h/b","z":-1.5e3}`,
		`{"next":"http://h/a"} trailing`,
		`{"next":"http://h/\ud800"}`,
		"{\"next\":\"http://h/\xff\"}",
		`{"next":null,"previous":true}`,
		`   `,
	} {
		f.Add([]byte(s), uint8(3), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut, read uint8) {
		whole, _, _ := rewrite(t, in, nil, 64<<10)
		got, splices, peak := rewrite(t, in, []int{int(cut%16) + 1, int(cut) + 1}, int(read)+1)
		if !bytes.Equal(got, whole) {
			t.Fatalf("the output depends on the chunking:\n%q\n%q", whole, got)
		}
		if limit := Footprint(MaxLinkBytes); int64(peak) > limit {
			t.Fatalf("held %d bytes, bound %d", peak, limit)
		}
		// Apply the reported splices to the input: that must be the output.
		var want []byte
		last := int64(0)
		for _, s := range splices {
			if s.start < last || s.end > int64(len(in)) || s.start >= s.end {
				t.Fatalf("splice %d..%d out of order or range (input %d bytes)", s.start, s.end, len(in))
			}
			var link string
			if err := json.Unmarshal(in[s.start:s.end], &link); err != nil {
				t.Fatalf("spliced %q, which is not a JSON string", in[s.start:s.end])
			}
			if with, ok := replaceOrigin(link); !ok || string(encode(with)) != string(s.with) {
				t.Fatalf("spliced %q with %q", in[s.start:s.end], s.with)
			}
			want = append(append(want, in[last:s.start]...), s.with...)
			last = s.end
		}
		want = append(want, in[last:]...)
		if !bytes.Equal(got, want) {
			t.Fatalf("bytes outside the splices changed:\n in %q\nout %q", in, got)
		}
		if json.Valid(in) && bytes.HasPrefix(bytes.TrimLeft(in, " \t\r\n"), []byte("{")) {
			if ref := reference(in, replaceOrigin, MaxLinkBytes); !bytes.Equal(got, ref) {
				t.Fatalf("differs from the reference:\n in %q\nout %q\nref %q", in, got, ref)
			}
		}
		if json.Valid(got) != json.Valid(in) {
			t.Fatalf("JSON validity changed: %q -> %q", in, got)
		}
	})
}
