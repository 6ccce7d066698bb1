package proxy_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/scgate/scgate/proxy"
)

// FuzzBodyMatcher: the 403 body matcher only ever recognises the configured
// wording as a whole. Properties, for any wording it accepts and any body:
//   - it never matches a body that does not contain the wording, unless the
//     body spells it with JSON escapes (a backslash);
//   - it never matches a body whose detail merely quotes the wording among
//     other text (a 403 that echoes a caller's input);
//   - it always matches {"detail": wording}, as the broadcaster writes it.
func FuzzBodyMatcher(f *testing.F) {
	f.Add("Invalid API key.", []byte(`{"detail":"Invalid API key."}`))
	f.Add("Invalid API key.", []byte(`{"detail":"You do not have permission to perform this action."}`))
	f.Add("Invalid API key.", []byte(`{"detail":"No playlist named Invalid API key."}`))
	f.Add("Invalid API key.", []byte(`{"detail":"\u0049nvalid API key."}`))
	f.Add("Invalid API key.", []byte(`  Invalid API key.  `))
	f.Add(`quo"te`, []byte(`{"detail":"quo\"te"}`))
	f.Add("x", []byte(`{"detail":"x","detail":"y"}`))
	f.Fuzz(func(t *testing.T, wording string, body []byte) {
		m, err := proxy.NewBodyMatcher(wording)
		if err != nil {
			return
		}
		if m.Match(body) && !bytes.Contains(body, []byte(wording)) && !bytes.Contains(body, []byte(`\`)) {
			t.Fatalf("wording %q matched %q, which does not contain it", wording, body)
		}
		echo, _ := json.Marshal(map[string]string{"detail": "x" + wording})
		if m.Match(echo) {
			t.Fatalf("wording %q matched a detail that only contains it: %s", wording, echo)
		}
		exact, _ := json.Marshal(map[string]string{"detail": wording})
		if !m.Match(exact) {
			t.Fatalf("wording %q did not match %s", wording, exact)
		}
	})
}
