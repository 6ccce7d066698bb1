package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/scgate/scgate/internal/tomlpos"
	"github.com/scgate/scgate/proxy/policy"
)

// Policy is [policy]: named allow-lists of "METHOD PATTERN" rules and which
// callers they bind. A caller with no rule set (and no default) may call
// every route. [policy.stations] scopes rule sets to stations (radio
// servers): set name → station IDs. Applied live on SIGHUP.
type Policy struct {
	Default  string              `toml:"default"`
	Sets     map[string][]string `toml:"sets"`
	Callers  map[string]string   `toml:"callers"`
	Stations map[string][]int    `toml:"stations"`
}

// validate checks every rule and reference, each problem at its line.
func (pol Policy) validate(p *problems) {
	c := p.c
	at := func(line int, what, msg string) {
		p.errs = append(p.errs, fmt.Errorf("%s:%d: %s: %s", c.path, line, what, msg))
	}
	for _, name := range SortedNames(pol.Sets) {
		if len(pol.Sets[name]) == 0 {
			at(c.Line("policy", "sets", name), "policy.sets."+name,
				"an empty rule set allows nothing; list rules such as \"GET /api/v2/**\", or remove the set")
		}
		for i, rule := range pol.Sets[name] {
			if _, err := policy.ParseRule(rule); err != nil {
				at(c.Line("policy", "sets", name, tomlpos.Elem(i)), fmt.Sprintf("policy.sets.%s rule %d", name, i+1), err.Error())
			}
		}
	}
	for _, caller := range SortedNames(pol.Callers) {
		if _, ok := pol.Sets[pol.Callers[caller]]; !ok {
			at(c.Line("policy", "callers", caller), "policy.callers."+caller,
				fmt.Sprintf("rule set %q is not defined under [policy.sets]", pol.Callers[caller]))
		}
	}
	for _, name := range SortedNames(pol.Stations) {
		if _, ok := pol.Sets[name]; !ok {
			at(c.Line("policy", "stations", name), "policy.stations."+name,
				fmt.Sprintf("rule set %q is not defined under [policy.sets]; a station list scopes a rule set of the same name", name))
			continue
		}
		if _, err := policy.New(policy.Options{Sets: map[string][]string{name: {"GET /"}}, Stations: map[string][]int{name: pol.Stations[name]}}); err != nil {
			msg := err.Error()
			if _, after, ok := strings.Cut(msg, ": rule set "+strconv.Quote(name)+": "); ok {
				msg = after
			}
			at(c.Line("policy", "stations", name), "policy.stations."+name, msg)
		}
	}
	if pol.Default != "" {
		if _, ok := pol.Sets[pol.Default]; !ok {
			at(c.Line("policy", "default"), "policy.default",
				fmt.Sprintf("rule set %q is not defined under [policy.sets]", pol.Default))
		}
	}
}

// Options is [policy] as policy.New takes it.
func (pol Policy) Options() policy.Options {
	return policy.Options{Sets: pol.Sets, Callers: pol.Callers, Default: pol.Default, Stations: pol.Stations}
}

// SortedNames returns m's keys in order, for output that does not change
// from run to run.
func SortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
