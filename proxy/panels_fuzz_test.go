package proxy

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzPanelNamed: whatever the path and Host, a request names a configured
// panel only by exactly /panels/NAME/ (path mode) or NAME.<suffix> (host
// mode), and in path mode what is forwarded is the rest of the path, never
// more.
func FuzzPanelNamed(f *testing.F) {
	for _, s := range []string{"/panels/north/api/v2/x/", "/panels/%6eorth/api/", "/panels//", "/panels/north", "/api/v2/",
		"/panels/north%2F../south/", "/panels/NORTH/x", "//panels/north/x"} {
		f.Add(s, "north.gw.test")
	}
	f.Add("/api/v2/", "NORTH.gw.test.:443")
	u, _ := url.Parse("http://127.0.0.1:1")
	configured := map[string]bool{"north": true, "south": true}
	f.Fuzz(func(t *testing.T, path, host string) {
		for _, byHost := range []bool{false, true} {
			h := &Handler{routing: PanelRouting{ByHost: byHost, HostSuffix: "gw.test"}, panels: map[string]*panel{}}
			for name := range configured {
				h.panels[name] = &panel{name: name, upstream: u}
			}
			named, rest, prefixed := h.panelNamed(host, path)
			if !configured[named] {
				continue
			}
			if byHost {
				if prefixed || rest != path {
					t.Fatalf("host mode changed the path %q to %q", path, rest)
				}
				hh := strings.ToLower(host)
				if !strings.HasPrefix(hh, named+".gw.test") {
					t.Fatalf("host %q named panel %q", host, named)
				}
				continue
			}
			if !prefixed || path != PanelsPrefix+named+rest || !strings.HasPrefix(rest, "/") {
				t.Fatalf("path %q named panel %q with rest %q", path, named, rest)
			}
		}
	})
}
