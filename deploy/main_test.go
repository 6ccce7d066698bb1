package deploy

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/scgate/scgate/deploy/internal/scgatebin"
)

// scgateBinary is the scgate binary of this checkout, built by TestMain: the
// tests run `scgate check` and a live gateway with it.
var scgateBinary string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "scgate-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if scgateBinary, err = scgatebin.Build(ctx, dir, "v0.0.0-deploytest"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
