package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/deploy/internal/scgatebin"
)

func TestBuildThenVerify(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := scgatebin.Build(ctx, dir, "v0.0.0-clitest")
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(dir, "oci")
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"build", "--binary", bin, "--version", "v0.0.0-clitest", "--created", "1700000000",
		"--layout", layout, "--tarball", filepath.Join(dir, "scgate.tar")}, &out, &errOut); code != 0 {
		t.Fatalf("build: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "scgate:v0.0.0-clitest (sha256:") {
		t.Errorf("build printed %q", out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"verify", "--layout", layout}, &out, &errOut); code != 0 {
		t.Fatalf("verify: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "scgate v0.0.0-clitest (commit") {
		t.Errorf("verify printed %q", out.String())
	}
	// A mismatched version label is caught.
	layout2 := filepath.Join(dir, "oci2")
	if code := run(ctx, []string{"build", "--binary", bin, "--version", "v9", "--layout", layout2}, &out, &errOut); code != 0 {
		t.Fatalf("build: exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(ctx, []string{"verify", "--layout", layout2}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "labelled version") {
		t.Errorf("verify of a mislabelled image: exit %d, %q", code, errOut.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil, {"push"}, {"build"}, {"build", "--binary", "x"}, {"verify"},
		{"build", "--binary", "x", "--layout", "y", "--created", "yesterday"},
		{"release"}, {"release", "--binary", "scgate-arm64", "--layout", "y"}, {"release", "--binary", "arm64=x"},
		{"verify-release"}, {"push", "--layout", "x"}, {"push", "--to", "localhost:5000/scgate:v1"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage)", args, code)
		}
	}
}
