package main

import (
	"fmt"
	"strings"
	"time"
)

// goal is one performance target checked against a run.
type goal struct {
	What   string
	Result string // the measured figures, or why there are none
	Met    string // "yes", "no" or "–" (not measured in this run)
}

// goals checks scgate's performance targets against one scenario of a run:
// throughput and CPU beside bare, memory beside nginx, and the latency added
// in the open loop beside nginx's.
func goals(d runData, scenario string) []goal {
	find := func(target string, conns int) *result {
		for i, r := range d.Results {
			if r.Scenario == scenario && r.Target == target && r.Conns == conns && r.OK {
				return &d.Results[i]
			}
		}
		return nil
	}
	var conns []int
	for _, r := range d.Results {
		if r.Scenario == scenario && !containsInt(conns, r.Conns) {
			conns = append(conns, r.Conns)
		}
	}
	var out []goal
	ratioGoal := func(what, target string, limit float64, atMost bool, get func(*result) float64) {
		g := goal{What: what, Met: "–"}
		var parts []string
		met := true
		for _, c := range conns {
			t, b := find(target, c), find("bare", c)
			if t == nil || b == nil || get(b) == 0 {
				continue
			}
			x := get(t) / get(b)
			parts = append(parts, fmt.Sprintf("%.2f× at c=%d", x, c))
			met = met && (x >= limit && !atMost || x <= limit && atMost)
		}
		if len(parts) > 0 {
			g.Result, g.Met = strings.Join(parts, ", "), yesNo(met)
		} else {
			g.Result = "not measured (bare or " + target + " missing)"
		}
		out = append(out, g)
	}
	rps := func(r *result) float64 { return r.RPS }
	cpu := func(r *result) float64 { return float64(r.CPUPerReq) }
	ratioGoal("scgate-min req/s ≥ 0.95× bare", "scgate-min", 0.95, false, rps)
	ratioGoal("scgate-min CPU/req ≤ 1.10× bare", "scgate-min", 1.10, true, cpu)
	ratioGoal("scgate-full req/s ≥ 0.90× bare", "scgate-full", 0.90, false, rps)

	idle := goal{What: "scgate-min idle RSS ≤ 10 MB", Met: "–", Result: "not measured"}
	for _, m := range d.Memory {
		if m.Scenario == scenario && m.Target == "scgate-min" {
			idle.Result = fmt.Sprintf("%.1f MB (%.1f MB of it anonymous)", float64(m.IdleRSS)/(1<<20), float64(m.IdleAnon)/(1<<20))
			idle.Met = yesNo(m.IdleRSS <= 10<<20)
		}
	}
	out = append(out, idle)
	if len(conns) > 0 {
		top := conns[0]
		for _, c := range conns {
			top = max(top, c)
		}
		for _, t := range []string{"scgate-min", "scgate-full"} {
			g := goal{What: fmt.Sprintf("%s RSS after c=%d ≤ nginx's", t, top), Met: "–", Result: "not measured (nginx or " + t + " missing)"}
			if s, n := find(t, top), find("nginx", top); s != nil && n != nil {
				g.Result = fmt.Sprintf("%.1f MB against %.1f MB", float64(s.RSS)/(1<<20), float64(n.RSS)/(1<<20))
				g.Met = yesNo(s.RSS <= n.RSS)
			}
			out = append(out, g)
		}
	}
	for _, rate := range []int{500, 2000} {
		g := goal{What: fmt.Sprintf("scgate-full added p99 ≤ nginx's + 250 µs at %d req/s", rate), Met: "–",
			Result: "not measured (direct, nginx or scgate-full missing at this rate)"}
		get := func(target string) *openResult {
			for i, o := range d.Open {
				if o.Scenario == scenario && o.Target == target && o.Rate == rate && o.Sent > 0 && o.Errors == 0 {
					return &d.Open[i]
				}
			}
			return nil
		}
		if dir, n, s := get("direct"), get("nginx"), get("scgate-full"); dir != nil && n != nil && s != nil {
			sAdd, nAdd := s.P99-dir.P99, n.P99-dir.P99
			g.Result = fmt.Sprintf("%+.0f µs against nginx's %+.0f µs", float64(sAdd)/1e3, float64(nAdd)/1e3)
			g.Met = yesNo(sAdd <= nAdd+250*time.Microsecond)
		}
		out = append(out, g)
	}
	return out
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// goalsMarkdown is the targets table of one scenario.
func goalsMarkdown(b *strings.Builder, d runData, scenario string) {
	gs := goals(d, scenario)
	measured := false
	for _, g := range gs {
		measured = measured || g.Met != "–"
	}
	if !measured {
		return
	}
	b.WriteString("\nTargets, checked against this run:\n\n| target | measured | met? |\n| --- | --- | --- |\n")
	for _, g := range gs {
		fmt.Fprintf(b, "| %s | %s | %s |\n", g.What, g.Result, g.Met)
	}
}
