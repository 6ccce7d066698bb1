package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/deploy/internal/scgatebin"
)

// TestVersionFromBuildInfo: a build without -X main.version (as `go install
// MODULE/cmd/scgate@VERSION` makes) reports the module version and the VCS
// revision the go command recorded, not "dev" and "unknown".
func TestVersionFromBuildInfo(t *testing.T) {
	root, err := scgatebin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rev, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("no git checkout to stamp a revision from: %v", err)
	}
	// The go command finds a git repository by its .git folder: in a git
	// worktree (.git is a file) it stamps nothing. CI runs on a clone.
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		t.Skipf("%s/.git is not a folder (a git worktree?): the go command stamps no VCS information here", root)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "scgate")
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=true", "-o", bin, "./cmd/scgate")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	if !strings.Contains(got, "commit "+strings.TrimSpace(string(rev))) {
		t.Errorf("scgate version = %q, want the revision %s", got, rev)
	}
	if strings.HasPrefix(got, "scgate dev ") {
		t.Errorf("scgate version = %q: the module version from the build info is missing", got)
	}
}
