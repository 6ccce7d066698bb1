package tlsconf

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// TestFilesSwapUnderLoad: while clients handshake continuously, the Secret
// is swapped between two good pairs many times, with a mismatched pair in
// between; no handshake fails, and the last good pair ends up served.
func TestFilesSwapUnderLoad(t *testing.T) {
	ca := tlstest.NewCA(t, "server CA")
	pairA, certA, keyA := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	pairB, certB, keyB := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	_, _, keyOther := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	secret := newSecretDir(t, map[string][]byte{"tls.crt": certA, "tls.key": keyA})
	var rec reloads
	f, err := NewFiles(FilesOptions{CertFile: secret.path("tls.crt"), KeyFile: secret.path("tls.key"), PollInterval: -1, OnReload: rec.record})
	if err != nil {
		t.Fatal(err)
	}
	url := filesServer(t, f)
	client := clientConfig(ca)
	run(t, f.Run)

	known := map[string]bool{pairA.Leaf.SerialNumber.String(): true, pairB.Leaf.SerialNumber.String(): true}
	var handshakes, failures atomic.Int64
	var firstErr atomic.Value
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				s, err := fetch(url, client) // a new connection, so a new handshake
				switch {
				case err != nil:
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				case !known[s.serial.String()]:
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("served unknown serial %x", s.serial))
				default:
					handshakes.Add(1)
				}
			}
		})
	}

	const swaps = 20
	var want *big.Int
	for i := range swaps {
		if i == swaps/2 {
			// A half-rotated Secret: B's certificate with another key.
			secret.update(map[string][]byte{"tls.crt": certB, "tls.key": keyOther})
			waitFor(t, "the bad pair to be refused", func() error {
				if _, failed := rec.counts(); failed == 0 {
					return errString("no failed reload yet")
				}
				return nil
			})
		}
		cert, key, leaf := certA, keyA, pairA.Leaf
		if i%2 == 0 {
			cert, key, leaf = certB, keyB, pairB.Leaf
		}
		secret.update(map[string][]byte{"tls.crt": cert, "tls.key": key})
		want = leaf.SerialNumber
		waitFor(t, fmt.Sprintf("swap %d to be served", i+1), serialIs(url, client, want))
	}
	stop()
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d handshakes failed; first: %v", n, n+handshakes.Load(), firstErr.Load())
	}
	if handshakes.Load() < swaps {
		t.Fatalf("only %d handshakes during %d swaps: the load did not overlap the swaps", handshakes.Load(), swaps)
	}
	t.Logf("%d handshakes, %d swaps, 0 failures", handshakes.Load(), swaps)
}
