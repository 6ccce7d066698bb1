package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where a run happened, for the report's header.
type machine struct {
	Date     string   `json:"date"`
	CPU      string   `json:"cpu"`
	Cores    int      `json:"cores"`
	Kernel   string   `json:"kernel"`
	LoadAvg0 string   `json:"loadavg_at_start"`
	LoadAvg  string   `json:"loadavg_at_end"`
	Go       string   `json:"go"`
	Versions []string `json:"versions"`
	Took     string   `json:"took"`
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func describeMachine(start time.Time, took time.Duration, load0 string) machine {
	m := machine{LoadAvg0: load0, Date: start.UTC().Format("2006-01-02 15:04 MST"), Cores: runtime.NumCPU(), Go: runtime.Version(), Took: took.Round(time.Second).String()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = loadAvg()
	for _, v := range [][]string{{"nginx", "-v"}, {"haproxy", "-v"}, {"caddy", "version"}, {"wrk", "-v"}} {
		out, _ := exec.Command(v[0], v[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if line != "" {
			m.Versions = append(m.Versions, line)
		}
	}
	return m
}

// runData is everything a run measured: results.json, and what the
// reports are written from.
type runData struct {
	Machine  machine          `json:"machine"`
	Results  []result         `json:"results"`            // closed loop (wrk)
	Open     []openResult     `json:"open,omitempty"`     // open loop (vegeta)
	Memory   []memTrack       `json:"memory,omitempty"`   // RSS and heap over time
	Profiles []profileAccount `json:"profiles,omitempty"` // CPU by area (-profile)
	Skipped  []skipped        `json:"skipped,omitempty"`  // targets not run
}

// skipped is a target the run could not start, such as a peer that is not
// installed.
type skipped struct {
	Scenario string `json:"scenario"`
	Target   string `json:"target"`
	Reason   string `json:"reason"`
}

// memChartFile is the memory chart's name beside chart.svg.
func memChartFile(chartPath string) string {
	dir, file := filepath.Split(chartPath)
	return filepath.Join(dir, strings.TrimSuffix(file, ".svg")+"-memory.svg")
}

// writeReports prints the tables and writes results.json, results.md,
// chart.svg and chart-memory.svg into the results folder (and the
// docs/performance.md and chart copies asked for).
func writeReports(cfg config, d runData, stdout io.Writer) error {
	md := markdown(d)
	fmt.Fprint(stdout, md)
	js, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	svg := chart(d.Results)
	memSVG := memoryChart(d.Memory)
	errs := []error{
		os.WriteFile(filepath.Join(cfg.Out, "results.json"), js, 0o644),
		os.WriteFile(filepath.Join(cfg.Out, "results.md"), []byte(md), 0o644),
		os.WriteFile(filepath.Join(cfg.Out, "chart.svg"), []byte(svg), 0o644),
		os.WriteFile(filepath.Join(cfg.Out, "chart-memory.svg"), []byte(memSVG), 0o644),
	}
	if cfg.Chart != "" {
		errs = append(errs, os.WriteFile(cfg.Chart, []byte(svg), 0o644),
			os.WriteFile(memChartFile(cfg.Chart), []byte(memSVG), 0o644))
	}
	if cfg.Readme != "" {
		errs = append(errs, updateReadme(cfg.Readme, md))
	}
	return errors.Join(errs...)
}

// markdown is the report: per scenario, the closed-loop table, the
// open-loop table, the memory table and the CPU accounting.
func markdown(d runData) string {
	m, results := d.Machine, d.Results
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s (took %s) on %d cores of %s, Linux %s, %s; load average %s at the start, %s at the end. ",
		m.Date, m.Took, m.Cores, m.CPU, m.Kernel, m.Go, m.LoadAvg0, m.LoadAvg)
	b.WriteString("wrk, the upstream and the target share the cores: compare ratios within one run, not absolute numbers.")
	if len(m.Versions) > 0 {
		b.WriteString(" Peers: " + strings.Join(m.Versions, "; ") + ".")
	}
	b.WriteString("\n")
	for _, s := range scenarioOrder(d) {
		about := s
		for _, sc := range scenarios {
			if sc.Name == s {
				about = sc.Name + ": " + sc.About
			}
		}
		fmt.Fprintf(&b, "\n**%s**\n", about)
		var missing []string
		for _, sk := range d.Skipped {
			if sk.Scenario == s {
				missing = append(missing, sk.Target+" ("+sk.Reason+")")
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(&b, "\nNot run: %s.\n", strings.Join(missing, "; "))
		}
		if isPoll(s) {
			b.WriteString("\n")
			pollTable(&b, s, results)
			continue
		}
		if !hasClosed(results, s) {
			openMarkdown(&b, s, d.Open)
			memoryMarkdown(&b, s, d.Memory, results)
			profileMarkdown(&b, s, d.Profiles, results)
			goalsMarkdown(&b, d, s)
			continue
		}
		b.WriteString("\n| target | conns | req/s | × direct | × nginx | p50 | p99 | p99.9 | errors | upstream conns | CPU µs/req | RSS MB | check |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, r := range results {
			if r.Scenario != s {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s | %s | %d | %d | %.1f | %s | %s |\n",
				r.Target, r.Conns, r.RPS, ratio(r, results, "direct"), ratio(r, results, "nginx"),
				ms(r.P50), ms(r.P99), ms(r.P999), r.Errors, r.UpConns, float64(r.CPUPerReq)/1e3, mb(r), okText(r.OK))
		}
		openMarkdown(&b, s, d.Open)
		memoryMarkdown(&b, s, d.Memory, results)
		profileMarkdown(&b, s, d.Profiles, results)
		goalsMarkdown(&b, d, s)
	}
	return b.String()
}

// isPoll reports whether the scenario named s is a paced poll.
func isPoll(s string) bool {
	for _, sc := range scenarios {
		if sc.Name == s {
			return sc.Poll
		}
	}
	return false
}

// pollTable writes the poll scenario's table: what matters is the
// upstream's share of the pollers' requests.
func pollTable(b *strings.Builder, s string, results []result) {
	b.WriteString("| target | pollers | req/s | upstream req/s | upstream share | p50 | p99 | errors | CPU µs/req | RSS MB | check |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		if r.Scenario != s {
			continue
		}
		share := "–"
		if r.RPS > 0 {
			share = fmt.Sprintf("%.2f%%", 100*r.UpstreamRPS/r.RPS)
		}
		check := okText(r.OK)
		if r.Note != "" {
			check += ": " + r.Note
		}
		fmt.Fprintf(b, "| %s | %d | %.0f | %.2f | %s | %s | %s | %d | %.1f | %s | %s |\n",
			r.Target, r.Conns, r.RPS, r.UpstreamRPS, share, ms(r.P50), ms(r.P99), r.Errors, float64(r.CPUPerReq)/1e3, mb(r), check)
	}
}

func hasClosed(results []result, scenario string) bool {
	for _, r := range results {
		if r.Scenario == scenario {
			return true
		}
	}
	return false
}

// scenarioOrder is the scenarios of a run in the order they ran.
func scenarioOrder(d runData) []string {
	var out []string
	add := func(s string) {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	for _, r := range d.Results {
		add(r.Scenario)
	}
	for _, r := range d.Open {
		add(r.Scenario)
	}
	for _, m := range d.Memory {
		add(m.Scenario)
	}
	return out
}

// scenarioNames are the scenarios of closed-loop results, for the chart.
func scenarioNames(results []result) []string {
	return scenarioOrder(runData{Results: results})
}

// ratio is r's req/s over the named target's in the same scenario and conns.
func ratio(r result, all []result, other string) string {
	for _, o := range all {
		if o.Scenario == r.Scenario && o.Conns == r.Conns && o.Target == other && o.RPS > 0 {
			return fmt.Sprintf("%.2f", r.RPS/o.RPS)
		}
	}
	return "–"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func mb(r result) string {
	if r.Target == "direct" {
		return "–" // the upstream's, not a proxy's
	}
	return fmt.Sprintf("%.1f", float64(r.RSS)/(1<<20))
}

// The markers of docs/performance.md between which updateReadme writes the report.
const (
	readmeBegin = "<!-- bench:begin (written by go run ./bench -readme docs/performance.md) -->"
	readmeEnd   = "<!-- bench:end -->"
)

// updateReadme replaces the text between the markers of path with md.
func updateReadme(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := spliceBetween(b, readmeBegin, readmeEnd, md)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

func spliceBetween(b []byte, begin, end, content string) ([]byte, error) {
	i := bytes.Index(b, []byte(begin))
	j := bytes.Index(b, []byte(end))
	if i < 0 || j < i {
		return nil, fmt.Errorf("no %q ... %q markers", begin, end)
	}
	var out bytes.Buffer
	out.Write(b[:i+len(begin)])
	out.WriteString("\n" + content)
	out.Write(b[j:])
	return out.Bytes(), nil
}

// palette gives each target the same colour in every panel.
var palette = map[string]string{
	"direct": "#9e9e9e", "bare": "#8d6e63", "nginx": "#2e7d32", "haproxy": "#1565c0", "caddy": "#00838f",
	"scgate-min": "#ef6c00", "scgate-full": "#c62828", "scgate-nopgo": "#f48fb1", "scgate-v10": "#ef6c00", "scgate-v10k": "#6a1b9a",
	"nginx-cache": "#66bb6a", "scgate-cache": "#ff8a65",
}

// chart draws req/s by concurrency, one panel per scenario, one bar per
// target: a hand-written SVG, so the bench needs no plotting library.
func chart(results []result) string {
	const (
		width, panelH     = 900, 260
		left, right, top  = 70, 170, 30
		bottomPad, barGap = 40, 2
	)
	var loads []result // the poll scenario's req/s is its pace, not a capacity
	for _, r := range results {
		if !isPoll(r.Scenario) {
			loads = append(loads, r)
		}
	}
	results = loads
	scens := scenarioNames(results)
	height := len(scens)*(panelH+top) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	for si, s := range scens {
		var rs []result
		var conns []int
		var targets []string
		maxRPS := 0.0
		for _, r := range results {
			if r.Scenario != s {
				continue
			}
			rs = append(rs, r)
			maxRPS = math.Max(maxRPS, r.RPS)
			if !containsInt(conns, r.Conns) {
				conns = append(conns, r.Conns)
			}
			if !contains(targets, r.Target) {
				targets = append(targets, r.Target)
			}
		}
		scale := niceCeil(maxRPS)
		y0 := si*(panelH+top) + top
		plotH := panelH - bottomPad
		plotW := width - left - right
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s: req/s by wrk connections</text>`+"\n", left, y0-10, s)
		for i := 0; i <= 4; i++ {
			v := scale * float64(i) / 4
			y := float64(y0+plotH) - float64(plotH)*float64(i)/4
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%sk</text>`+"\n", left-6, y+4, strconv.FormatFloat(v/1000, 'f', -1, 64))
		}
		groupW := float64(plotW) / float64(len(conns))
		barW := (groupW*0.8 - float64(barGap*len(targets))) / float64(len(targets))
		for ci, c := range conns {
			gx := float64(left) + groupW*float64(ci) + groupW*0.1
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">c=%d</text>`+"\n", gx+groupW*0.4, y0+plotH+18, c)
			for ti, t := range targets {
				for _, r := range rs {
					if r.Conns != c || r.Target != t {
						continue
					}
					h := float64(plotH) * r.RPS / scale
					x := gx + float64(ti)*(barW+barGap)
					fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s c=%d: %.0f req/s</title></rect>`+"\n",
						x, float64(y0+plotH)-h, barW, h, colour(t), t, c, r.RPS)
				}
			}
		}
		for ti, t := range targets {
			ly := y0 + 10 + ti*18
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
				left+plotW+16, ly, colour(t), left+plotW+34, ly+10, t)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func colour(t string) string {
	if c, ok := palette[t]; ok {
		return c
	}
	return "#607d8b"
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1000).
func niceCeil(v float64) float64 {
	if v <= 1000 {
		return 1000
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// runReport is `bench report -from results.json`: it writes the reports of an
// earlier run again (to its folder, and to -readme and -chart), so that the
// docs/performance.md can show a chosen run without loading the machine again.
func runReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench report", flag.ContinueOnError)
	from := fs.String("from", "", "results.json of an earlier run")
	var cfg config
	fs.StringVar(&cfg.Readme, "readme", "", "update the results between the bench markers of this file (docs/performance.md)")
	fs.StringVar(&cfg.Chart, "chart", "", "also write the chart (SVG) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*from)
	if err != nil {
		return err
	}
	var saved runData
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("%s: %w", *from, err)
	}
	if len(saved.Results) == 0 && len(saved.Open) == 0 {
		return fmt.Errorf("%s holds no results", *from)
	}
	cfg.Out = filepath.Dir(*from)
	if accts := accountFolder(cfg.Out); len(accts) > 0 {
		saved.Profiles = accts // the rules of this build, on the run's profiles
	}
	return writeReports(cfg, saved, stdout)
}
