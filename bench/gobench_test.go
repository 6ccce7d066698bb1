package main

import (
	"os"
	"strings"
	"testing"
)

const goBenchOutput = `goos: linux
goarch: amd64
pkg: github.com/scgate/scgate/proxy
cpu: Intel(R) Xeon(R) Processor
BenchmarkHandler/minimal-2         	  220806	      7081 ns/op	    2564 B/op	      24 allocs/op
BenchmarkHandler/full-2            	   99301	     13038 ns/op	    5063 B/op	      27 allocs/op
BenchmarkHandler/full-2            	   99301	     12000 ns/op	    5063 B/op	      26 allocs/op
PASS
ok  	github.com/scgate/scgate/proxy	8.507s
pkg: github.com/scgate/scgate/keyvault
BenchmarkWatcherReload10kCallers/callers=10000-2      	      20	  50111878 ns/op	         2.047 retained-MB	14103380 B/op	  169386 allocs/op
`

func TestGoBenchTable(t *testing.T) {
	rows, err := parseGoBench(strings.NewReader(goBenchOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	table := goBenchTable(rows)
	for _, want := range []string{
		"| proxy | Handler/minimal | 7081 | 2564 | 24 |  |",
		"| proxy | Handler/full | 12000 | 5063 | 26 |  |", // the fastest run wins
		"| keyvault | WatcherReload10kCallers/callers=10000 | 50111878 | 14103380 | 169386 | 2.047 retained-MB |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestTrimProcs(t *testing.T) {
	for in, want := range map[string]string{"A-2": "A", "A/b=1-16": "A/b=1", "A/x-y": "A/x-y", "A": "A"} {
		if got := trimProcs(in); got != want {
			t.Errorf("trimProcs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGobenchCommand(t *testing.T) {
	var out strings.Builder
	if err := runGobench(nil, strings.NewReader("PASS\n"), &out); err == nil {
		t.Fatal("no error for input without results")
	}
	path := t.TempDir() + "/README.md"
	if err := os.WriteFile(path, []byte("a\n"+goBenchBegin+"\nold\n"+goBenchEnd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runGobench([]string{"-readme", path}, strings.NewReader(goBenchOutput), &out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "| proxy | Handler/minimal |") || strings.Contains(string(b), "old") {
		t.Fatalf("README:\n%s", b)
	}
}
