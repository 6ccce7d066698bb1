package keyvault_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind (a Watcher's Run
// loop or fsnotify's reader, most likely).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
