package config

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/tracing"
)

// Tracing is [tracing]: OpenTelemetry spans exported over OTLP
// (docs/tracing.md). Off unless enabled.
type Tracing struct {
	Enabled     bool              `toml:"enabled"`
	Endpoint    string            `toml:"endpoint"`
	Protocol    string            `toml:"protocol"`
	Insecure    bool              `toml:"insecure"`
	CAFile      string            `toml:"ca_file"`
	CertFile    string            `toml:"cert_file"`
	KeyFile     string            `toml:"key_file"`
	HeadersFile string            `toml:"headers_file"`
	ServiceName string            `toml:"service_name"`
	Attributes  map[string]string `toml:"resource_attributes"`
	// SampleRatio is a pointer so that a written 0 (sample no new trace)
	// differs from an absent one (the default).
	SampleRatio    *float64 `toml:"sample_ratio"`
	TrustedCallers []string `toml:"trusted_callers"`
	TrustProxies   bool     `toml:"trust_proxies"`
	MaxQueueSize   int      `toml:"max_queue_size"`
	BatchTimeout   Duration `toml:"batch_timeout"`
	ExportTimeout  Duration `toml:"export_timeout"`
}

// DefaultSampleRatio is tracing.sample_ratio's default: every new trace.
const DefaultSampleRatio = 1.0

// maxHeadersFileBytes bounds the headers file.
const maxHeadersFileBytes = 64 << 10

func (t *Tracing) defaults() {
	t.Protocol = orString(t.Protocol, tracing.ProtocolGRPC)
	t.ServiceName = orString(t.ServiceName, tracing.DefaultServiceName)
	if t.SampleRatio == nil {
		r := DefaultSampleRatio
		t.SampleRatio = &r
	}
	if t.MaxQueueSize == 0 {
		t.MaxQueueSize = tracing.DefaultMaxQueueSize
	}
	t.BatchTimeout.orDefault(tracing.DefaultBatchTimeout)
	t.ExportTimeout.orDefault(tracing.DefaultExportTimeout)
}

func (t Tracing) validate(p *problems) {
	if !t.Enabled {
		return
	}
	if t.Endpoint == "" {
		p.add(`the collector's URL is required when tracing is enabled, e.g. "https://otel-collector:4317"`, "tracing", "endpoint")
	} else if err := tracing.CheckEndpoint(t.Endpoint, t.Protocol, t.Insecure); err != nil {
		key := "endpoint"
		if t.Protocol != tracing.ProtocolGRPC && t.Protocol != tracing.ProtocolHTTP {
			key = "protocol"
		}
		p.add(strings.TrimPrefix(err.Error(), "tracing: "), "tracing", key)
	}
	if r := *t.SampleRatio; r < 0 || r > 1 {
		p.add(fmt.Sprintf("%v: give a share from 0 (only traces trusted callers sampled) to 1 (every request)", r), "tracing", "sample_ratio")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.add("a client certificate needs both cert_file and key_file", "tracing", "cert_file")
	}
	if t.Insecure && (t.CAFile != "" || t.CertFile != "") {
		p.add("ca_file, cert_file and key_file are unused in clear text: remove them or use an https:// endpoint", "tracing", "insecure")
	}
	if t.MaxQueueSize < 0 || t.MaxQueueSize > 1<<20 {
		p.add("give a queue size from 1 to 1048576 spans", "tracing", "max_queue_size")
	}
	if t.ExportTimeout.Duration <= 0 {
		p.add("must be more than 0", "tracing", "export_timeout")
	}
	for i, c := range t.TrustedCallers {
		if c == "" {
			p.add(fmt.Sprintf("entry %d is empty: give caller identities as the vault's [callers] names them, or \"*\"", i+1), "tracing", "trusted_callers")
		}
	}
}

// TracingOptions is [tracing] as tracing.New takes it; it reads the CA,
// client certificate and headers files. The headers' values appear in no
// error. Dropped, Logger and Version are the gateway's to set.
func (c *Config) TracingOptions() (tracing.Options, error) {
	t := c.Tracing
	o := tracing.Options{
		Endpoint: t.Endpoint, Protocol: t.Protocol, Insecure: t.Insecure,
		ServiceName: t.ServiceName, Attributes: t.Attributes, SampleRatio: *t.SampleRatio,
		MaxQueueSize: t.MaxQueueSize, BatchTimeout: t.BatchTimeout.Duration, ExportTimeout: t.ExportTimeout.Duration,
	}
	if !t.Insecure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.CAFile != "" {
			pool, err := readCertPool(t.CAFile)
			if err != nil {
				return o, c.Wrap(err, "tracing", "ca_file")
			}
			tc.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return o, c.Wrap(fmt.Errorf("cannot load the client certificate: %w", err), "tracing", "cert_file")
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		o.TLS = tc
	}
	if t.HeadersFile != "" {
		h, err := readHeadersFile(t.HeadersFile)
		if err != nil {
			return o, c.Wrap(err, "tracing", "headers_file")
		}
		o.Headers = h
	}
	return o, nil
}

// TraceOptions is the proxy's side of [tracing], without the provider.
func (t Tracing) TraceOptions() proxy.TraceOptions {
	return proxy.TraceOptions{TrustedCallers: t.TrustedCallers, TrustProxies: t.TrustProxies}
}

// readHeadersFile reads "Name: value" lines (blank lines and # comments
// skipped). Errors name the line, never its value: the file holds tokens.
func readHeadersFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(data) > maxHeadersFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxHeadersFileBytes)
	}
	headers := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s:%d: write each header as \"Name: value\"", path, n)
		case !httpguts.ValidHeaderFieldName(name):
			return nil, fmt.Errorf("%s:%d: the header name is not a valid HTTP header name", path, n)
		case !httpguts.ValidHeaderFieldValue(value):
			return nil, fmt.Errorf("%s:%d: the value of %s has characters a header cannot carry", path, n, name)
		}
		headers[strings.ToLower(name)] = value
	}
	return headers, nil
}
