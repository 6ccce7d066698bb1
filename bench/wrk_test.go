package main

import (
	"strings"
	"testing"
	"time"
)

const wrkOutput = `Running 10s test @ http://127.0.0.1:18301/api/v2/playlists/?server=1
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  500.00us  20.00ms   90.00%
  100000 requests in 10.00s, 120.00MB read
Requests/sec:  10000.00
SCBENCH requests=100000 duration_us=10000000 bytes=125829120 connect=0 read=2 write=1 status=4 timeout=3 p50_us=1100 p90_us=1900 p99_us=4200 p999_us=9100 max_us=20000
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk([]byte(wrkOutput))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 100000 || r.RPS() != 10000 || r.Errors != 6 || r.NonOK != 4 {
		t.Fatalf("%+v", r)
	}
	if r.P50 != 1100*time.Microsecond || r.P99 != 4200*time.Microsecond || r.P999 != 9100*time.Microsecond {
		t.Fatalf("percentiles %v %v %v", r.P50, r.P99, r.P999)
	}
	for name, out := range map[string]string{
		"no line":       "unable to connect to 127.0.0.1:1 Connection refused\n",
		"bad field":     "SCBENCH requests=x duration_us=1 p50_us=1 p99_us=1 p999_us=1\n",
		"missing field": "SCBENCH requests=1 duration_us=1\n",
	} {
		if _, err := parseWrk([]byte(out)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	got := strings.Join(wrkArgs("r.lua", "http://127.0.0.1:1/p", 256, 1, 10*time.Second, "SC-API-KEY: k"), " ")
	want := "-t1 -c256 -d10s --timeout 5s --latency -s r.lua -H SC-API-KEY: k http://127.0.0.1:1/p"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
