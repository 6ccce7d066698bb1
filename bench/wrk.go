package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrkResult is what one wrk run measured.
type wrkResult struct {
	Requests int64
	Duration time.Duration
	Bytes    int64
	// Errors: connect, read, write and timeout errors together; NonOK: answers
	// that were not 2xx or 3xx.
	Errors, NonOK int64
	P50, P90      time.Duration
	P99, P999     time.Duration
	Max           time.Duration
}

// RPS is requests per second over the run.
func (r wrkResult) RPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// parseWrk finds the SCBENCH line of conf/report.lua in wrk's output.
func parseWrk(out []byte) (wrkResult, error) {
	var line string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "SCBENCH "); ok {
			line = rest
		}
	}
	if line == "" {
		return wrkResult{}, errors.New("wrk printed no SCBENCH line (did it fail to connect?)")
	}
	v := map[string]int64{}
	for _, kv := range strings.Fields(line) {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return wrkResult{}, fmt.Errorf("wrk: bad field %q", kv)
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return wrkResult{}, fmt.Errorf("wrk: field %q: %w", kv, err)
		}
		v[k] = n
	}
	for _, k := range []string{"requests", "duration_us", "p50_us", "p99_us", "p999_us"} {
		if _, ok := v[k]; !ok {
			return wrkResult{}, fmt.Errorf("wrk: SCBENCH line lacks %s", k)
		}
	}
	us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
	return wrkResult{
		Requests: v["requests"], Duration: us("duration_us"), Bytes: v["bytes"],
		Errors: v["connect"] + v["read"] + v["write"] + v["timeout"], NonOK: v["status"],
		P50: us("p50_us"), P90: us("p90_us"), P99: us("p99_us"), P999: us("p999_us"), Max: us("max_us"),
	}, nil
}

// wrkArgs builds wrk's command line. header, when set, is sent on every
// request (the key, for the direct target).
func wrkArgs(script, url string, conns, threads int, d time.Duration, header string) []string {
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(d/time.Second)) + "s", "--timeout", "5s", "--latency", "-s", script}
	if header != "" {
		args = append(args, "-H", header)
	}
	return append(args, url)
}

// runWrk runs wrk once, bounded by the run's context and its own duration.
func runWrk(ctx context.Context, args []string, d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d+20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("wrk %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}
