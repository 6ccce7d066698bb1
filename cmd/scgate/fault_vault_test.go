package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
)

const (
	faultKey1 = "FaultKy1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	faultKey2 = "FaultKy2.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
)

func faultVault(key string) string {
	return "[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \"" + key + "\"\n"
}

// metricValue scrapes the admin listener and returns the value of the
// series (name with its labels, as exposed), or 0 when it is absent.
func metricValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	code, body := get(t, http.DefaultClient, admin+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// TestFaultVaultBrokenUnderLoad runs the real gateway (watcher, metrics,
// logger) under continuous load while the vault file is truncated, deleted,
// made unreadable, replaced by a directory, by a FIFO (opening it for reading
// would block), and by a file that parses but is invalid. After each fault
// the last good vault keeps serving (not one request fails, and the upstream
// keeps getting the key in force), scgate_vault_reloads_total{result="error"}
// grows and the failure is logged; each repair is picked up (a rotation, seen
// at the upstream).
func TestFaultVaultBrokenUnderLoad(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{faultKey1, faultKey2}, MaxRecorded: 1000})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	// writeSetup puts the extra settings right after [vault]'s file.
	p := writeSetup(t, up.URL, "poll_interval = \"100ms\"\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n"+
		"[admin]\nlisten = \"127.0.0.1:0\"\n", faultVault(faultKey1))
	vaultPath := filepath.Join(filepath.Dir(p), "keys.toml")
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	g, err := gateway.Build(c, gateway.Options{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "readiness", func() bool { return g.Ready() == nil })
	base := "http://" + g.Addr().String()
	admin := "http://" + g.AdminAddr().String()

	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for range 1000000 {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(base + "/api/v2/playlists/?server=1")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	var stopOnce sync.Once
	stopLoad := func() { stopOnce.Do(func() { close(stop); wg.Wait() }) }
	defer stopLoad()
	underLoad := func(what string) {
		t.Helper()
		from := ok.Load()
		waitUntil(t, "50 answers "+what, func() bool { return ok.Load() >= from+50 })
	}
	// servingKey waits until the upstream receives key, and checks it keeps
	// receiving only that key.
	servingKey := func(key string) {
		t.Helper()
		want := keyvault.Prefix(key)
		waitUntil(t, "the upstream to receive "+want, func() bool {
			reqs := si.Requests()
			return len(reqs) > 0 && len(reqs[len(reqs)-1].KeyPrefixes) == 1 && reqs[len(reqs)-1].KeyPrefixes[0] == want
		})
		si.Reset()
	}

	euid := os.Geteuid()
	faults := []struct {
		name     string
		unusable bool // the file cannot even be read
		break_   func()
	}{
		{"truncated", false, func() { replaceFile(t, vaultPath, faultVault(faultKey2)[:25]) }},
		{"deleted", true, func() { rm(t, vaultPath) }},
		{"made unreadable", true, func() {
			if euid != 0 {
				if err := os.Chmod(vaultPath, 0); err != nil {
					t.Fatal(err)
				}
				return
			}
			// Root reads a file whatever its mode: use one whose read fails
			// for root too (EIO at offset 0).
			tmp := vaultPath + ".lnk"
			if err := os.Symlink("/proc/self/mem", tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, vaultPath); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a directory", true, func() {
			rm(t, vaultPath)
			if err := os.Mkdir(vaultPath, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a FIFO", true, func() {
			rm(t, vaultPath)
			if err := syscall.Mkfifo(vaultPath, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"invalid", false, func() { replaceFile(t, vaultPath, faultVault(faultKey2)+"[callers.x]\n") }},
		{"a caller naming a missing key", false, func() {
			replaceFile(t, vaultPath, faultVault(faultKey2)+"\"other\" = \"missing\"\n")
		}},
	}
	current := faultKey1
	servingKey(current)
	for i, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			errorsBefore := metricValue(t, admin, `scgate_vault_reloads_total{result="error"}`)
			logged := logs.FilterMessage("vault reload failed; keeping the last good vault").Len()
			f.break_()
			if f.unusable && readable(vaultPath) {
				t.Fatal("the fault did not take: the vault is still readable")
			}
			waitUntil(t, "the failed reload to be counted", func() bool {
				return metricValue(t, admin, `scgate_vault_reloads_total{result="error"}`) > errorsBefore
			})
			waitUntil(t, "the failed reload to be logged", func() bool {
				return logs.FilterMessage("vault reload failed; keeping the last good vault").Len() > logged
			})
			underLoad("with the vault " + f.name)
			servingKey(current)
			if code, _ := get(t, http.DefaultClient, admin+"/readyz"); code != http.StatusOK {
				t.Fatalf("/readyz %d while the last good vault serves", code)
			}

			// Repair, with the other key, so the pick-up is visible upstream.
			successBefore := metricValue(t, admin, `scgate_vault_reloads_total{result="success"}`)
			current = []string{faultKey1, faultKey2}[(i+1)%2]
			_ = os.Chmod(vaultPath, 0o600)
			if st, err := os.Lstat(vaultPath); err == nil && !st.Mode().IsRegular() {
				rm(t, vaultPath)
			}
			replaceFile(t, vaultPath, faultVault(current))
			servingKey(current)
			waitUntil(t, "the repair to be counted", func() bool {
				return metricValue(t, admin, `scgate_vault_reloads_total{result="success"}`) > successBefore
			})
		})
	}
	stopLoad()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed while the vault was broken; first: %v", failed.Load(), ok.Load()+failed.Load(), firstFailure.Load())
	}
	t.Logf("%d requests through %d vault faults, 0 failures", ok.Load(), len(faults))
}

// readable reports whether path is a regular file that can be read, without
// blocking on a FIFO.
func readable(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return false
	}
	_, err = io.ReadAll(f)
	return err == nil
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
