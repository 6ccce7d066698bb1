package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
)

// Options configures a Policy.
type Options struct {
	// Sets are the named rule sets: name → rules ("METHOD PATTERN").
	Sets map[string][]string
	// Callers gives callers (identity strings) their rule set by name.
	Callers map[string]string
	// Default is the rule set of callers not listed in Callers; empty means
	// such callers may call every route.
	Default string
	// Stations scopes rule sets to radio servers ("stations"): set name →
	// the station IDs its callers may touch. A set not named here is not
	// scoped. The proxy enforces the scope (proxy/station.go).
	Stations map[string][]int
}

// Set is a named allow-list.
type Set struct {
	Name  string
	Rules []Rule
	// Stations are the station IDs the set's callers may touch, sorted;
	// nil when the set is not scoped to stations.
	Stations []int
}

// Scoped reports whether the set limits its callers to some stations.
func (s *Set) Scoped() bool { return s != nil && s.Stations != nil }

// AllowsStation reports whether id is one of the set's stations. An
// unscoped set allows every station.
func (s *Set) AllowsStation(id int) bool {
	if !s.Scoped() {
		return true
	}
	_, found := slices.BinarySearch(s.Stations, id)
	return found
}

// Policy is an immutable, validated route policy. The zero value and a nil
// *Policy allow everything.
type Policy struct {
	sets    map[string]*Set
	callers map[string]*Set
	def     *Set
}

// New validates opts and builds the policy. Every problem is reported, each
// naming its rule set and rule.
func New(opts Options) (*Policy, error) {
	p := &Policy{sets: make(map[string]*Set, len(opts.Sets)), callers: make(map[string]*Set, len(opts.Callers))}
	var errs []error
	for _, name := range sortedKeys(opts.Sets) {
		set := &Set{Name: name}
		if name == "" {
			errs = append(errs, errors.New("policy: a rule set needs a name"))
		}
		if len(opts.Sets[name]) == 0 {
			errs = append(errs, fmt.Errorf("policy: rule set %q is empty; list at least one rule, or drop the set", name))
		}
		for i, text := range opts.Sets[name] {
			r, err := ParseRule(text)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy: rule set %q, rule %d: %w", name, i+1, err))
				continue
			}
			set.Rules = append(set.Rules, r)
		}
		p.sets[name] = set
	}
	for _, name := range sortedKeys(opts.Stations) {
		set, ok := p.sets[name]
		if !ok {
			errs = append(errs, fmt.Errorf("policy: stations are given for rule set %q, which is not defined", name))
			continue
		}
		ids, err := stationList(opts.Stations[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("policy: rule set %q: %w", name, err))
			continue
		}
		set.Stations = ids
	}
	for _, caller := range sortedKeys(opts.Callers) {
		name := opts.Callers[caller]
		set, ok := p.sets[name]
		if !ok {
			errs = append(errs, fmt.Errorf("policy: caller %q names rule set %q, which is not defined", caller, name))
			continue
		}
		p.callers[caller] = set
	}
	if opts.Default != "" {
		set, ok := p.sets[opts.Default]
		if !ok {
			errs = append(errs, fmt.Errorf("policy: default rule set %q is not defined", opts.Default))
		}
		p.def = set
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// SetOf returns the rule set that applies to caller, or nil when the caller
// may call everything.
func (p *Policy) SetOf(caller string) *Set {
	if p == nil {
		return nil
	}
	if s, ok := p.callers[caller]; ok {
		return s
	}
	return p.def
}

// Decision is the outcome of Allow.
type Decision struct {
	Allowed bool
	// Set names the caller's rule set; "" when the caller has none (every
	// route is allowed).
	Set string
	// Rule is the first rule that allowed the request; nil when refused or
	// when the caller has no rule set. Rule.String() is the rule as written.
	Rule *Rule
	// Scope is the caller's rule set, for its stations (Set.Scoped); nil
	// when the caller has none.
	Scope *Set
}

// Allow decides whether caller may send method to path, a path that Normalize
// returned. It does not allocate.
func (p *Policy) Allow(caller, method, path string) Decision {
	set := p.SetOf(caller)
	if set == nil {
		return Decision{Allowed: true}
	}
	for i := range set.Rules {
		if set.Rules[i].Matches(method, path) {
			return Decision{Allowed: true, Set: set.Name, Rule: &set.Rules[i], Scope: set}
		}
	}
	return Decision{Set: set.Name, Scope: set}
}

// Explain answers "which rule allows METHOD PATH for this caller" for a path
// as a caller would send it (escaped): it normalises the path as the gateway
// does, then decides. The error is a *PathError when the gateway would answer
// 400 bad_request.
func (p *Policy) Explain(caller, method, escapedPath string) (Decision, error) {
	path, err := Normalize(escapedPath)
	if err != nil {
		return Decision{}, err
	}
	return p.Allow(caller, method, path), nil
}

// Sets returns the rule sets, sorted by name.
func (p *Policy) Sets() []*Set {
	if p == nil {
		return nil
	}
	out := make([]*Set, 0, len(p.sets))
	for _, name := range sortedKeys(p.sets) {
		out = append(out, p.sets[name])
	}
	return out
}

// Holder hands out the current Policy and swaps it atomically on reload, so
// that a request uses one policy from start to end. The zero Holder holds a
// nil Policy, which allows everything.
type Holder struct{ p atomic.Pointer[Policy] }

// Current returns the policy in force.
func (h *Holder) Current() *Policy { return h.p.Load() }

// Store puts p in force.
func (h *Holder) Store(p *Policy) { h.p.Store(p) }

// MaxStationID bounds a station ID: the broadcaster's IDs are small
// positive integers, and a bound keeps every ID an int on every platform.
const MaxStationID = 1<<31 - 1

// stationList validates a set's station IDs and returns them sorted.
func stationList(ids []int) ([]int, error) {
	if len(ids) == 0 {
		return nil, errors.New("the station list is empty, which would allow no station; list station IDs, or remove the entry to leave the set unscoped")
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	for i, id := range out {
		if id < 1 || id > MaxStationID {
			return nil, fmt.Errorf("station %d: station IDs are positive integers", id)
		}
		if i > 0 && out[i-1] == id {
			return nil, fmt.Errorf("station %d is listed twice", id)
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
