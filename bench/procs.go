package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs starts every process of a run in its own process group and stops
// them all, children included (nginx's workers), however the run ends.
type procs struct {
	mu      sync.Mutex
	started []*proc
}

// proc is one started process and where its output goes.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// start runs argv with env added to the bench's environment, stdout and
// stderr to dir/name.log.
func (p *procs) start(name, dir string, env []string, argv ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that stop reaches every descendant, and
	// Pdeathsig so that nothing outlives a bench that was killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	pr := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { pr.err = cmd.Wait(); close(pr.done) }()
	p.mu.Lock()
	p.started = append(p.started, pr)
	p.mu.Unlock()
	return pr, nil
}

// exited reports whether the process has ended.
func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// stopAll sends SIGTERM to every group started, in reverse order, waits up
// to grace for each leader, then SIGKILLs whatever is left of each group.
func (p *procs) stopAll(grace time.Duration) {
	p.mu.Lock()
	started := p.started
	p.started = nil
	p.mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		pr := started[i]
		pgid := pr.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-pr.done:
		case <-t.C:
		}
		t.Stop()
		// Workers may outlive their master for a moment: end the group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-pr.done
	}
}

// groupStats sums the resident memory and the CPU time (user+system, all
// threads) of every process in the process group pgid.
type groupStats struct {
	RSSBytes int64
	// AnonBytes is the anonymous part of RSSBytes (RssAnon: heap, stacks,
	// runtime); the rest is mapped files, mostly the program's own pages,
	// which the page cache shares between processes running the same file.
	AnonBytes int64
	CPU       time.Duration
	Procs     int
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux platform Go supports.
const clockTick = 100

func readGroupStats(pgid int) (groupStats, error) {
	return readGroupStatsIn("/proc", pgid)
}

func readGroupStatsIn(procDir string, pgid int) (groupStats, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return groupStats{}, err
	}
	var s groupStats
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue // not a process
		}
		stat, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		f, err := parseStat(stat)
		if err != nil || f.pgrp != pgid {
			continue
		}
		status, err := os.ReadFile(filepath.Join(procDir, e.Name(), "status"))
		if err != nil {
			continue
		}
		s.Procs++
		s.CPU += time.Duration(f.utime+f.stime) * time.Second / clockTick
		s.RSSBytes += vmRSS(status)
		s.AnonBytes += statusKB(status, "RssAnon:")
	}
	if s.Procs == 0 {
		return s, fmt.Errorf("no process in group %d", pgid)
	}
	return s, nil
}

type statFields struct {
	pgrp         int
	utime, stime int64
}

// parseStat reads /proc/PID/stat. The command name, in parentheses, may hold
// spaces and parentheses itself, so fields are counted after the last ')'.
func parseStat(b []byte) (statFields, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return statFields{}, errors.New("stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// After the name: state(3) ppid(4) pgrp(5) ... utime(14) stime(15).
	if len(f) < 13 {
		return statFields{}, errors.New("stat: too few fields")
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return statFields{}, fmt.Errorf("stat: %w", err)
	}
	return statFields{pgrp: pgrp, utime: ut, stime: st}, nil
}

// vmRSS returns VmRSS from /proc/PID/status in bytes (0 for a kernel thread
// or a zombie, which have none).
func vmRSS(status []byte) int64 { return statusKB(status, "VmRSS:") }

// statusKB returns a "NAME:  N kB" line of /proc/PID/status in bytes, 0
// when it has none.
func statusKB(status []byte, name string) int64 {
	for _, line := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 2 && f[1] == "kB" {
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}
