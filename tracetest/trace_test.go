package tracetest

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// collector runs the Collector's OTLP receiver (gRPC and HTTP) into a sink.
func collector(t *testing.T) (sink *consumertest.TracesSink, grpcAddr, httpAddr string) {
	t.Helper()
	grpcAddr, httpAddr = freeAddr(t), freeAddr(t)
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = grpcAddr
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = httpAddr
	sink = new(consumertest.TracesSink)
	r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return sink, grpcAddr, httpAddr
}

// client sends requests from a loopback source address (the cidr identity).
func client(source string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func get(t *testing.T, c *http.Client, url string, hdr http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(resp.Body)
	resp.Body.Close()
	return resp
}

// span is one exported span with its resource.
type span struct {
	ptrace.Span
	resource pcommon.Resource
}

func spans(sink *consumertest.TracesSink) []span {
	var out []span
	for _, td := range sink.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					out = append(out, span{ss.At(k), rs.Resource()})
				}
			}
		}
	}
	return out
}

func str(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

// everything is every string of a span: name, attributes, events, links
// and resource, for the secret search.
func everything(s span) string {
	var b strings.Builder
	add := func(m pcommon.Map) {
		m.Range(func(k string, v pcommon.Value) bool {
			b.WriteString(k + "=" + v.AsString() + "\n")
			return true
		})
	}
	b.WriteString(s.Name() + "\n" + s.TraceState().AsRaw() + "\n")
	add(s.Attributes())
	add(s.resource.Attributes())
	for i := 0; i < s.Events().Len(); i++ {
		b.WriteString(s.Events().At(i).Name() + "\n")
		add(s.Events().At(i).Attributes())
	}
	for i := 0; i < s.Links().Len(); i++ {
		b.WriteString(s.Links().At(i).TraceState().AsRaw() + "\n")
		add(s.Links().At(i).Attributes())
	}
	return b.String()
}

const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

func TestSpansReachTheCollector(t *testing.T) {
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			sink, grpcAddr, httpAddr := collector(t)
			endpoint := "http://" + grpcAddr
			if proto == "http" {
				endpoint = "http://" + httpAddr
			}
			gw, addr, admin := gateway(t, standin(t), `[tracing]
enabled = true
endpoint = "`+endpoint+`"
protocol = "`+proto+`"
insecure = true
batch_timeout = "100ms"
trusted_callers = ["trusted-svc"]
[tracing.resource_attributes]
"deployment.environment" = "test"
`)
			hdr := http.Header{"Traceparent": {callerParent}, "Tracestate": {"vendor=1"}, "Baggage": {"tenant=radio"},
				"Sc-Api-Key": {keyOther}} // a caller's own key: removed, and in no span
			if resp := get(t, client("127.0.0.1"), "http://"+addr+"/api/v2/playlists/", hdr); resp.StatusCode != 200 {
				t.Fatalf("trusted caller: status %d", resp.StatusCode)
			}
			if resp := get(t, client("127.0.0.2"), "http://"+addr+"/api/v2/playlists/", hdr); resp.StatusCode != 200 {
				t.Fatalf("other caller: status %d", resp.StatusCode)
			}
			waitFor(t, "four spans at the collector", func() bool { return sink.SpanCount() >= 4 })

			var trusted, other span
			clients := map[pcommon.SpanID]span{}
			for _, s := range spans(sink) {
				if got := str(s.resource.Attributes(), "service.name"); got != "scgate" {
					t.Errorf("service.name %q", got)
				}
				if got := str(s.resource.Attributes(), "deployment.environment"); got != "test" {
					t.Errorf("deployment.environment %q", got)
				}
				switch {
				case s.Kind() == ptrace.SpanKindClient:
					clients[s.ParentSpanID()] = s
				case str(s.Attributes(), "scgate.caller") == "trusted-svc":
					trusted = s
				case str(s.Attributes(), "scgate.caller") == "other-svc":
					other = s
				}
				for _, secret := range []string{keyTrusted, keyOther, "FAKEfake"} {
					if strings.Contains(everything(s), secret) {
						t.Fatalf("span %q holds a secret:\n%s", s.Name(), everything(s))
					}
				}
			}
			// The trusted caller's trace continues: its span is the parent.
			if trusted.TraceID().String() != callerTrace || trusted.ParentSpanID().String() != callerSpan {
				t.Fatalf("trusted caller's server span: trace %s parent %s, want %s %s",
					trusted.TraceID(), trusted.ParentSpanID(), callerTrace, callerSpan)
			}
			for k, want := range map[string]string{"http.route": "/api/v2/playlists/", "scgate.key": "admin",
				"scgate.key_prefix": "TrcAdm01", "http.response.status_code": "200", "scgate.upstream_status": "200"} {
				if got := str(trusted.Attributes(), k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if trusted.Kind() != ptrace.SpanKindServer || trusted.Name() != "GET /api/v2/playlists/" {
				t.Errorf("server span %q kind %v", trusted.Name(), trusted.Kind())
			}
			c, ok := clients[trusted.SpanID()]
			if !ok || c.TraceID() != trusted.TraceID() {
				t.Fatal("no client span under the trusted caller's server span")
			}
			events := map[string]bool{}
			for i := 0; i < c.Events().Len(); i++ {
				events[c.Events().At(i).Name()] = true
			}
			for _, e := range []string{"got_conn", "wrote_request", "first_byte"} {
				if !events[e] {
					t.Errorf("client span lacks the %s event: %v", e, events)
				}
			}
			// The other caller's context is only linked.
			if other.TraceID().String() == callerTrace || !other.ParentSpanID().IsEmpty() {
				t.Fatal("an untrusted caller's traceparent became the parent")
			}
			if other.Links().Len() != 1 || other.Links().At(0).TraceID().String() != callerTrace ||
				other.Links().At(0).SpanID().String() != callerSpan {
				t.Fatal("the untrusted caller's context is not linked")
			}
			if _, ok := clients[other.SpanID()]; !ok {
				t.Fatal("no client span under the other caller's server span")
			}

			// The access log line and the duration exemplar carry the trace id.
			waitFor(t, "the access log lines", func() bool { return len(gw.jsonLines("request")) == 2 })
			ids := map[string]bool{}
			for _, l := range gw.jsonLines("request") {
				id, _ := l["trace_id"].(string)
				ids[id] = true
			}
			if !ids[callerTrace] || !ids[other.TraceID().String()] {
				t.Fatalf("access log trace ids %v", ids)
			}
			req, _ := http.NewRequest("GET", "http://"+admin+"/metrics", nil)
			req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/openmetrics-text") {
				t.Fatalf("/metrics answered %q to an OpenMetrics scraper", resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(body, `scgate_request_duration_seconds_bucket{caller="trusted-svc"`) ||
				!strings.Contains(body, `# {trace_id="`+callerTrace+`"}`) {
				t.Fatal("no duration exemplar with the trusted caller's trace id")
			}
		})
	}
}
