package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// stopAll ends a started process and the children it left in its group.
func TestStopAllEndsTheWholeGroup(t *testing.T) {
	var p procs
	pr, err := p.start("sleeper", t.TempDir(), nil, "/bin/sh", "-c", "sleep 60 & sleep 60 & wait")
	if err != nil {
		t.Fatal(err)
	}
	pgid := pr.cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := readGroupStats(pgid)
		if err == nil && s.Procs == 3 {
			break // the shell and its two sleeps
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group never had 3 processes: %+v %v", s, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	p.stopAll(5 * time.Second)
	if !pr.exited() {
		t.Fatal("the leader is still running")
	}
	// The sleeps were SIGKILLed with the group; once reaped by init they are
	// gone from /proc.
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := readGroupStats(pgid); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("processes of the group outlived stopAll")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

func TestParseProcFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(pid, stat, status string) {
		if err := os.MkdirAll(filepath.Join(dir, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, pid, "stat"), []byte(stat), 0o644)
		_ = os.WriteFile(filepath.Join(dir, pid, "status"), []byte(status), 0o644)
	}
	// A name with spaces and parentheses, utime 150 and stime 50 ticks.
	write("100", "100 (nginx: (worker) x) S 1 100 100 0 -1 0 0 0 0 0 150 50 0 0 20 0 1 0 1 0 0", "Name:\tnginx\nVmRSS:\t  2048 kB\nRssAnon:\t 512 kB\n")
	write("101", "101 (other) S 1 999 999 0 -1 0 0 0 0 0 7 7 0 0 20 0 1 0 1 0 0", "VmRSS:\t4096 kB\n")
	write("102", "102 (worker) S 100 100 100 0 -1 0 0 0 0 0 50 50 0 0 20 0 1 0 1 0 0", "VmRSS:\t1024 kB\nRssAnon:\t256 kB\n")
	s, err := readGroupStatsIn(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	if s.Procs != 2 || s.RSSBytes != 3072<<10 || s.AnonBytes != 768<<10 || s.CPU != 3*time.Second {
		t.Fatalf("%+v", s)
	}
	if _, err := readGroupStatsIn(dir, 5); err == nil {
		t.Fatal("stats for an empty group")
	}
}
