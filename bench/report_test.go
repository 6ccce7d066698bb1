package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testResults = []result{
	{Scenario: "sidecar", Target: "direct", Conns: 32, RPS: 40000, P50: time.Millisecond, OK: true},
	{Scenario: "sidecar", Target: "nginx", Conns: 32, RPS: 20000, RSS: 20 << 20, CPUPerReq: 40 * time.Microsecond, OK: true},
	{Scenario: "sidecar", Target: "scgate-full", Conns: 32, RPS: 10000, RSS: 30 << 20, CPUPerReq: 90 * time.Microsecond, OK: true},
	{Scenario: "sidecar", Target: "direct", Conns: 256, RPS: 50000, OK: true},
	{Scenario: "sidecar", Target: "scgate-full", Conns: 256, RPS: 12500, Errors: 3, Note: "x"},
}

func TestMarkdownTable(t *testing.T) {
	md := markdown(runData{Machine: machine{Cores: 2, CPU: "Test CPU"}, Results: testResults})
	for _, want := range []string{
		"| scgate-full | 32 | 10000 | 0.25 | 0.50 |",
		"| scgate-full | 256 | 12500 | 0.25 | – |",
		"| 90.0 | 30.0 | ok |",
		"| 3 |",
		"FAIL |",
		"2 cores of Test CPU",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("lacks %q:\n%s", want, md)
		}
	}
}

// The chart is well-formed SVG with one bar per result.
func TestChartIsSVG(t *testing.T) {
	svg := chart(testResults)
	dec := xml.NewDecoder(strings.NewReader(svg))
	bars := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "title" {
			bars++
		}
	}
	if bars != len(testResults) {
		t.Fatalf("%d bars for %d results", bars, len(testResults))
	}
}

func TestSpliceBetweenMarkers(t *testing.T) {
	in := "intro\n" + readmeBegin + "\nold table\n" + readmeEnd + "\nrest\n"
	out, err := spliceBetween([]byte(in), readmeBegin, readmeEnd, "new table\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n" + readmeBegin + "\nnew table\n" + readmeEnd + "\nrest\n"; string(out) != want {
		t.Fatalf("got %q", out)
	}
	if _, err := spliceBetween([]byte("no markers"), readmeBegin, readmeEnd, "x"); err == nil {
		t.Fatal("spliced without markers")
	}
}

func TestNiceCeil(t *testing.T) {
	for v, want := range map[float64]float64{0: 1000, 1500: 2000, 38000: 50000, 61000: 100000, 100000: 100000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}

// `bench report` renders an earlier run's results.json again.
func TestReportFromSavedResults(t *testing.T) {
	dir := t.TempDir()
	cfg := config{Out: dir}
	if err := writeReports(cfg, runData{Machine: machine{Cores: 2}, Results: testResults}, io.Discard); err != nil {
		t.Fatal(err)
	}
	chartPath := filepath.Join(dir, "copy.svg")
	var out strings.Builder
	if err := runReport([]string{"-from", filepath.Join(dir, "results.json"), "-chart", chartPath}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| scgate-full | 32 | 10000 |") {
		t.Fatalf("report:\n%s", out.String())
	}
	if b, err := os.ReadFile(chartPath); err != nil || !strings.HasPrefix(string(b), "<svg") {
		t.Fatalf("chart: %v", err)
	}
}
