// Package scgatebin builds the scgate binary of this checkout for the deploy
// tests: the same static build (CGO_ENABLED=0) that goes into the image.
package scgatebin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// rootModule is the first line of the main module's go.mod.
const rootModule = "module github.com/scgate/scgate\n"

// RepoRoot finds the checkout's root (the folder of the main module's
// go.mod) by walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte(rootModule)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scgatebin: no go.mod of github.com/scgate/scgate above the working directory")
		}
		dir = parent
	}
}

// Build compiles ./cmd/scgate of the checkout into dir/scgate, statically,
// with version stamped in, and returns the binary's path.
func Build(ctx context.Context, dir, version string) (string, error) {
	return BuildArch(ctx, dir, version, "")
}

// BuildArch is Build for another GOARCH ("" is the machine's own), into
// dir/scgate-GOARCH.
func BuildArch(ctx context.Context, dir, version, goarch string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "scgate")
	env := append(os.Environ(), "CGO_ENABLED=0")
	if goarch != "" {
		out += "-" + goarch
		env = append(env, "GOOS=linux", "GOARCH="+goarch)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd/scgate")
	cmd.Dir = root
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("scgatebin: go build ./cmd/scgate: %w\n%s", err, b)
	}
	return out, nil
}
