package config

import (
	"slices"
	"strings"
	"testing"
)

func TestPolicyStations(t *testing.T) {
	good := minimal + "[policy.sets]\ncity = [\"GET /api/v2/**\"]\n[policy.stations]\ncity = [4, 3]\n[policy.callers]\nsvc = \"city\"\n"
	c, err := Parse("cfg.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Policy.Options().Stations["city"]; !slices.Equal(got, []int{4, 3}) {
		t.Fatalf("stations %v", got)
	}
	for name, c := range map[string]struct{ stations, want string }{
		"unknown set": {"town = [3]", `cfg.toml:10: policy.stations.town: rule set "town" is not defined under [policy.sets]`},
		"empty list":  {"city = []", "cfg.toml:10: policy.stations.city: the station list is empty"},
		"zero":        {"city = [0]", "cfg.toml:10: policy.stations.city: station 0: station IDs are positive integers"},
		"twice":       {"city = [3, 3]", "station 3 is listed twice"},
		"a string":    {`city = ["3"]`, "policy.stations.city"},
		"a float":     {"city = [3.0]", "policy.stations.city"},
	} {
		t.Run(name, func(t *testing.T) {
			file := minimal + "[policy.sets]\ncity = [\"GET /api/v2/**\"]\n[policy.stations]\n" + c.stations + "\n"
			_, err := Parse("cfg.toml", []byte(file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}
