package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

const panelsBase = "[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n"

// TestUpstreamsSections reads [upstreams.NAME] as panels, each completed
// with the library defaults, and [upstream] as the one default panel.
func TestUpstreamsSections(t *testing.T) {
	c, err := Parse("/etc/scgate/cfg.toml", []byte(panelsBase+`
[upstreams.north]
url = "https://north.example:1030"
rate = 5.0
[upstreams.south]
url = "https://south.example:1030"
ca_file = "south-ca.pem"
[panels]
by = "host"
host_suffix = "gw.example"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PanelNames(); !slices.Equal(got, []string{"north", "south"}) {
		t.Fatalf("panels %v", got)
	}
	list := c.PanelList()
	if list[0].Upstream.Rate != 5 || list[1].Upstream.ResponseHeaderTimeout.Duration != proxy.DefaultResponseHeaderTimeout ||
		list[1].Upstream.CAFile != "/etc/scgate/south-ca.pem" {
		t.Errorf("panel settings: %+v", list)
	}
	if r := c.PanelRouting(); !r.ByHost || r.HostSuffix != "gw.example" {
		t.Errorf("routing %+v", r)
	}
	c, err = Parse("cfg.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PanelNames(); !slices.Equal(got, []string{keyvault.DefaultPanel}) || c.PanelRouting().ByHost {
		t.Errorf("one [upstream]: panels %v, routing %+v", got, c.PanelRouting())
	}
}

// TestUpstreamsProblems: each mistake is reported at its line, in the
// file's words.
func TestUpstreamsProblems(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"both sections", "[upstream]\nurl = \"https://a.example\"\n[upstreams.b]\nurl = \"https://b.example\"\n" + panelsBase,
			"cfg.toml:1: upstream: both [upstream] and [upstreams.NAME] are set"},
		{"a name that is not a DNS label", "[upstreams.North_1]\nurl = \"https://a.example\"\n" + panelsBase,
			`cfg.toml:1: upstreams.North_1: panel name "North_1"`},
		{"a panel without url", "[upstreams.a]\nurl = \"https://a.example\"\n[upstreams.b]\nserver_name = \"x\"\n" + panelsBase,
			"cfg.toml:3: upstreams.b.url: the broadcaster's URL is required"},
		{"plain http to a remote panel", "[upstreams.a]\nurl = \"http://a.example\"\n" + panelsBase,
			"cfg.toml:2: upstreams.a.url: plain http"},
		{"a negative rate", "[upstreams.a]\nurl = \"https://a.example\"\nrate = -1.0\n" + panelsBase,
			"upstreams.a: rate and burst must not be negative"},
		{"host mode without a suffix", minimal + "[panels]\nby = \"host\"\n",
			"panels.host_suffix: give the domain"},
		{"an unknown mode", minimal + "[panels]\nby = \"header\"\n",
			`panels.by: "header": write "path"`},
		{"a typo in a panel setting", "[upstreams.a]\nurl = \"https://a.example\"\nrespone_header_timeout = \"1s\"\n" + panelsBase,
			`did you mean "upstreams.a.response_header_timeout"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cfg.toml", []byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %q", err, tc.want)
			}
		})
	}
}
