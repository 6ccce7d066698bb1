package image

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/scgate/scgate/deploy/internal/scgatebin"
)

// releaseBinaries builds scgate for linux/amd64 and linux/arm64.
func releaseBinaries(t *testing.T) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := t.TempDir()
	out := map[string][]byte{}
	for _, arch := range []string{"amd64", "arm64"} {
		p, err := scgatebin.BuildArch(ctx, dir, testVersion, arch)
		if err != nil {
			t.Fatal(err)
		}
		if out[arch], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestReleaseMultiArchWithSBOM: one OCI index holds linux/amd64 and
// linux/arm64 images with an SPDX SBOM attached; building twice gives the
// same digests; the layout round-trips; pushing it to a registry (an
// in-process one) with a crane-style copy gives the same index digest, both
// platforms, and the SBOM among the index's referrers.
func TestReleaseMultiArchWithSBOM(t *testing.T) {
	bins := releaseBinaries(t)
	opts := Options{CABundle: caBundle(t), Version: testVersion, Revision: "abc123", Created: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	r1, err := BuildRelease(opts, bins)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := BuildRelease(opts, bins)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := r1.Index.Digest()
	d2, _ := r2.Index.Digest()
	s1, _ := r1.SBOM.Digest()
	s2, _ := r2.SBOM.Digest()
	if d1 != d2 || s1 != s2 {
		t.Errorf("two builds of the same inputs: index %s / %s, SBOM %s / %s", d1, d2, s1, s2)
	}
	reps, err := VerifyRelease(context.Background(), r1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 {
		t.Fatalf("%d images, want 2", len(reps))
	}
	doc, err := SBOMDocument(r1.SBOM)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"spdxVersion": "SPDX-2.3"`, "pkg:golang/go.uber.org/zap@", "pkg:golang/stdlib@", "scgate (linux/arm64)", "ca-certificates"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("the SBOM lacks %s", want)
		}
	}

	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteReleaseLayout(dir, "scgate:"+testVersion, r1); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReleaseLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := back.Index.Digest(); d != d1 {
		t.Errorf("layout round trip: index %s, want %s", d, d1)
	}

	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true)))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref := u.Host + "/platform/scgate:" + testVersion
	pushed, err := Push(back, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pushed != d1 {
		t.Errorf("pushed index %s, want %s", pushed, d1)
	}
	tag, _ := name.ParseReference(ref)
	got, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != d1 {
		t.Errorf("the registry serves index %s, want %s", d, d1)
	}
	im, _ := got.IndexManifest()
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.String())
		if _, err := got.Image(m.Digest); err != nil {
			t.Errorf("image %s: %v", m.Digest, err)
		}
	}
	if strings.Join(platforms, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("platforms %v", platforms)
	}
	refs, err := remote.Referrers(tag.Context().Digest(d1.String()))
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != s1 {
		t.Fatalf("referrers of the index: %+v, want the SBOM %s", rm.Manifests, s1)
	}
	// This registry lists a referrer by its config's media type; the
	// manifest itself names the SBOM's type.
	sbom, err := remote.Image(tag.Context().Digest(s1.String()))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sbom.Manifest(); err != nil || m.ArtifactType != SBOMMediaType || m.Subject == nil || m.Subject.Digest != d1 {
		t.Errorf("pushed SBOM manifest %+v (%v): want artifactType %s and subject %s", m, err, SBOMMediaType, d1)
	}
	if doc, err := SBOMDocument(sbom); err != nil || !strings.Contains(string(doc), "SPDX-2.3") {
		t.Errorf("pushed SBOM: %v", err)
	}
}
