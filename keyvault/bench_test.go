package keyvault_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

// bigVault is a vault of callers callers sharing keys keys, one version each
// except every tenth key, which is mid-rotation with two. round changes one
// secret, so that two rounds differ as consecutive vault edits do.
func bigVault(callers, keys, round int) string {
	var b strings.Builder
	b.WriteString("[callers]\n")
	for i := range callers {
		fmt.Fprintf(&b, "\"spiffe://prod.example/ns/team-%d/sa/service-%d\" = \"key-%d\"\n", i%97, i, i%keys)
	}
	for k := range keys {
		fmt.Fprintf(&b, "\n[[keys.key-%d]]\nsecret = \"K%07d.FAKEfakeFAKEfakeFAKEfake%06d\"\nexpires = 2099-01-01T00:00:00Z\n", k, k, k+round*keys)
		if k%10 == 0 {
			fmt.Fprintf(&b, "\n[[keys.key-%d]]\nsecret = \"N%07d.FAKEfakeFAKEfakeFAKEfake%06d\"\nnot_before = 2020-01-01T00:00:00Z\n", k, k, k)
		}
	}
	return b.String()
}

// BenchmarkWatcherReload10kCallers is the whole reload of a 10,000-caller,
// 1,000-key vault as SIGHUP or a file change runs it: read, parse, validate,
// digest, audit diff against the previous vault, atomic swap. retained-MB is
// the heap one loaded vault keeps alive.
func BenchmarkWatcherReload10kCallers(b *testing.B) {
	for _, size := range []struct{ callers, keys int }{{10, 10}, {10_000, 1_000}} {
		b.Run(fmt.Sprintf("callers=%d", size.callers), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "keys.toml")
			files := []string{bigVault(size.callers, size.keys, 0), bigVault(size.callers, size.keys, 1)}
			vaulttest.WriteFile(b, path, files[0])
			before := heapInUse()
			w, err := keyvault.NewWatcher(keyvault.WatcherOptions{Path: path, PollInterval: -1, DisableNotify: true})
			if err != nil {
				b.Fatal(err)
			}
			retained := heapInUse() - before
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				b.StopTimer()
				vaulttest.WriteFile(b, path, files[i%2])
				b.StartTimer()
				if err := w.Reload(); err != nil {
					b.Fatal(err)
				}
			}
			runtime.KeepAlive(w)
			b.ReportMetric(float64(retained)/(1<<20), "retained-MB")
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// BenchmarkSelect10kCallers is key selection on the request path: the
// caller's key in a 10,000-caller vault, its active version avoiding
// rejected ones. It must not allocate.
func BenchmarkSelect10kCallers(b *testing.B) {
	v := vaulttest.Parse(b, bigVault(10_000, 1_000, 0))
	rej, err := keyvault.NewRejections(keyvault.RejectionsOptions{})
	if err != nil {
		b.Fatal(err)
	}
	callers := v.Callers()
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := callers[(i*7919)%len(callers)]
		if _, ok := v.KeyOf(c); !ok {
			b.Fatal("unknown caller")
		}
		if _, err := v.SelectAvoiding(c, now, rej); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
