package main

import (
	"fmt"

	"github.com/scgate/scgate/internal/tomlpos"
	"github.com/scgate/scgate/proxy/policy"
)

// PolicyConfig is [policy]: named allow-lists of "METHOD PATTERN" rules and
// which callers they bind. A caller with no rule set (and no default) may call
// every route. Applied live on SIGHUP.
type PolicyConfig struct {
	Default string              `toml:"default"`
	Sets    map[string][]string `toml:"sets"`
	Callers map[string]string   `toml:"callers"`
}

// validatePolicy checks every rule and reference, each problem at its line.
func (c *Config) validatePolicy() []error {
	p := c.Policy
	var errs []error
	at := func(line int, what, msg string) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", c.path, line, what, msg))
	}
	for _, name := range sortedNames(p.Sets) {
		if len(p.Sets[name]) == 0 {
			at(c.lines.Line("policy", "sets", name), "policy.sets."+name,
				"an empty rule set allows nothing; list rules such as \"GET /api/v2/**\", or remove the set")
		}
		for i, rule := range p.Sets[name] {
			if _, err := policy.ParseRule(rule); err != nil {
				at(c.lines.Line("policy", "sets", name, tomlpos.Elem(i)), fmt.Sprintf("policy.sets.%s rule %d", name, i+1), err.Error())
			}
		}
	}
	for _, caller := range sortedNames(p.Callers) {
		if _, ok := p.Sets[p.Callers[caller]]; !ok {
			at(c.lines.Line("policy", "callers", caller), "policy.callers."+caller,
				fmt.Sprintf("rule set %q is not defined under [policy.sets]", p.Callers[caller]))
		}
	}
	if p.Default != "" {
		if _, ok := p.Sets[p.Default]; !ok {
			at(c.lines.Line("policy", "default"), "policy.default",
				fmt.Sprintf("rule set %q is not defined under [policy.sets]", p.Default))
		}
	}
	return errs
}

// routePolicy builds the policy of a validated config.
func (c *Config) routePolicy() (*policy.Policy, error) {
	return policy.New(policy.Options{Sets: c.Policy.Sets, Callers: c.Policy.Callers, Default: c.Policy.Default})
}
