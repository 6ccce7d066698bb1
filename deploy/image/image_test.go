package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/scgate/scgate/deploy/internal/scgatebin"
)

const testVersion = "v0.0.0-imagetest"

// binary is the scgate binary of this checkout, built once by TestMain.
var binary []byte

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "scgate-image-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	path, err := scgatebin.Build(ctx, dir, testVersion)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if binary, err = os.ReadFile(path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// caBundle is the system's Debian bundle; .ci/run installs ca-certificates.
func caBundle(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("%v (apt-get install ca-certificates)", err)
	}
	return b
}

func buildTestImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := Build(Options{Binary: binary, CABundle: caBundle(t), Version: testVersion, Revision: "abc123",
		Created: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestBuiltImageVerifiesAndItsBinaryRuns(t *testing.T) {
	img := buildTestImage(t)
	rep, err := Verify(context.Background(), img, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.Version, "scgate "+testVersion+" ") {
		t.Errorf("version = %q", rep.Version)
	}
	if rep.Layers != 2 {
		t.Errorf("layers = %d, want 2 (system files, binary)", rep.Layers)
	}
	t.Logf("image %s: %.1f MiB compressed, binary %.1f MiB", rep.Digest, float64(rep.Size)/(1<<20), float64(rep.BinaryBytes)/(1<<20))
}

func TestConfig(t *testing.T) {
	cf, err := buildTestImage(t).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user = %q", c.User)
	}
	if strings.Join(c.Entrypoint, " ") != "/usr/local/bin/scgate" || strings.Join(c.Cmd, " ") != "run" {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if cf.Architecture != "amd64" && cf.Architecture != "arm64" {
		t.Errorf("architecture %q", cf.Architecture)
	}
	if got := c.Labels["org.opencontainers.image.revision"]; got != "abc123" {
		t.Errorf("revision label %q", got)
	}
	if got := c.Labels["org.opencontainers.image.created"]; got != "2026-11-01T00:00:00Z" {
		t.Errorf("created label %q", got)
	}
	if len(cf.History) != 2 || len(cf.RootFS.DiffIDs) != 2 {
		t.Errorf("history %d, diff ids %d: want 2 each", len(cf.History), len(cf.RootFS.DiffIDs))
	}
}

func TestSameInputsGiveTheSameDigest(t *testing.T) {
	a, err := buildTestImage(t).Digest()
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildTestImage(t).Digest()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("two builds of the same inputs: %s and %s", a, b)
	}
}

func TestLayoutAndTarballRoundTrip(t *testing.T) {
	img := buildTestImage(t)
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(dir, "scgate:"+testVersion, img); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Fatalf("no oci-layout marker: %v", err)
	}
	back, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := back.Digest(); got != want {
		t.Errorf("layout digest %s, want %s", got, want)
	}
	if _, err := Verify(context.Background(), back, t.TempDir()); err != nil {
		t.Errorf("image read back from the layout: %v", err)
	}
	if err := WriteLayout(dir, "scgate:again", img); err == nil {
		t.Error("writing into a non-empty layout folder succeeded")
	}

	tarPath := filepath.Join(t.TempDir(), "scgate.tar")
	if err := WriteTarball(tarPath, "scgate:"+testVersion, img); err != nil {
		t.Fatal(err)
	}
	// docker load's format keeps the config and the layers byte for byte
	// (the manifest it rebuilds has Docker media types, so another digest).
	fromTar, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := img.ConfigName()
	if got, _ := fromTar.ConfigName(); got != wantCfg {
		t.Errorf("tarball config %s, want %s", got, wantCfg)
	}
	_, err = Verify(context.Background(), fromTar, t.TempDir())
	if err == nil {
		t.Fatal("tarball image: want media type complaints (Docker types), got none")
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(line, "media type") {
			t.Errorf("tarball image: %s", line)
		}
	}
}

func TestVerifyFindsProblems(t *testing.T) {
	good := buildTestImage(t)
	withConfig := func(f func(*v1.ConfigFile)) v1.Image {
		cf, err := good.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		f(cf)
		img, err := mutate.ConfigFile(good, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// A dynamically linked executable that prints nothing like scgate.
	dynamic, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	dynImg, err := Build(Options{Binary: dynamic, CABundle: caBundle(t), Version: testVersion})
	if err != nil {
		t.Fatal(err)
	}
	noCA, err := Build(Options{Binary: binary, CABundle: []byte("not a certificate"), Version: testVersion})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		img  v1.Image
		want string
	}{
		{"root user", withConfig(func(c *v1.ConfigFile) { c.Config.User = "0:0" }), "non-root uid"},
		{"named user", withConfig(func(c *v1.ConfigFile) { c.Config.User = "nonroot" }), "numeric non-root uid"},
		{"unknown uid", withConfig(func(c *v1.ConfigFile) { c.Config.User = "1000:1000" }), "no entry for uid 1000"},
		{"shell entrypoint", withConfig(func(c *v1.ConfigFile) { c.Config.Entrypoint = []string{"/bin/sh", "-c"} }), "entrypoint"},
		{"wrong version label", withConfig(func(c *v1.ConfigFile) { c.Config.Labels["org.opencontainers.image.version"] = "v9" }), "labelled version"},
		{"missing port", withConfig(func(c *v1.ConfigFile) { delete(c.Config.ExposedPorts, "9090/tcp") }), "9090/tcp"},
		{"dynamic binary", dynImg, "dynamically linked"},
		{"bad CA bundle", noCA, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(context.Background(), tc.img, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestBuildRefusesMissingInputs(t *testing.T) {
	if _, err := Build(Options{CABundle: caBundle(t)}); err == nil {
		t.Error("no binary: want an error")
	}
	if _, err := Build(Options{Binary: binary}); err == nil {
		t.Error("no CA bundle: want an error")
	}
	if _, err := Build(Options{Binary: []byte("#!/bin/sh\n"), CABundle: caBundle(t)}); err == nil {
		t.Error("a script as binary: want an error")
	}
}
