package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Release is a multi-arch image: an OCI index with one image per
// architecture, and an SPDX SBOM attached to the index as an OCI artifact
// (a manifest whose subject is the index, found through the referrers API).
type Release struct {
	Index v1.ImageIndex
	SBOM  v1.Image
}

// BuildRelease builds one image per architecture from binaries (GOARCH →
// static scgate binary) with the same opts otherwise, puts them into an OCI
// index in a fixed order, and attaches the SBOM. Nothing is fetched; the
// same inputs give the same digests.
func BuildRelease(opts Options, binaries map[string][]byte) (Release, error) {
	if len(binaries) == 0 {
		return Release{}, errors.New("image: no binaries")
	}
	arches := make([]string, 0, len(binaries))
	for a := range binaries {
		arches = append(arches, a)
	}
	sort.Strings(arches)
	var adds []mutate.IndexAddendum
	for _, arch := range arches {
		got, err := ArchOf(binaries[arch])
		if err != nil {
			return Release{}, err
		}
		if got != arch {
			return Release{}, fmt.Errorf("image: the binary given for %s is built for %s", arch, got)
		}
		o := opts
		o.Binary, o.Arch = binaries[arch], arch
		img, err := Build(o)
		if err != nil {
			return Release{}, fmt.Errorf("image: %s: %w", arch, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Platform:  &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	doc, err := SBOM(opts, binaries)
	if err != nil {
		return Release{}, err
	}
	subject, err := partial.Descriptor(idx)
	if err != nil {
		return Release{}, err
	}
	sbom, err := newArtifact(SBOMMediaType, doc, *subject, map[string]string{
		"org.opencontainers.image.created": opts.withDefaults().Created.Format("2006-01-02T15:04:05Z07:00"),
	})
	if err != nil {
		return Release{}, err
	}
	return Release{Index: idx, SBOM: sbom}, nil
}

// emptyConfig is the OCI empty descriptor's content.
var emptyConfig = []byte("{}")

// artifact is an OCI 1.1 artifact manifest: artifactType, the empty config,
// one blob, and a subject.
type artifact struct {
	manifest []byte
	blob     v1.Layer
}

func newArtifact(artifactType string, data []byte, subject v1.Descriptor, annotations map[string]string) (v1.Image, error) {
	blob := static.NewLayer(data, types.MediaType(artifactType))
	d, err := blob.Digest()
	if err != nil {
		return nil, err
	}
	cfgHash, _, err := v1.SHA256(bytes.NewReader(emptyConfig))
	if err != nil {
		return nil, err
	}
	subject.Platform, subject.Annotations, subject.ArtifactType = nil, nil, ""
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: cfgHash, Size: int64(len(emptyConfig)), Data: emptyConfig},
		Layers:        []v1.Descriptor{{MediaType: types.MediaType(artifactType), Digest: d, Size: int64(len(data))}},
		Subject:       &subject,
		Annotations:   annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{manifest: raw, blob: blob})
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, _ := a.blob.Digest(); d == h {
		return a.blob, nil
	}
	return nil, fmt.Errorf("image: artifact has no blob %s", h)
}

// WriteReleaseLayout writes the index (named ref) and the SBOM into a new
// OCI layout in dir.
func WriteReleaseLayout(dir, ref string, r Release) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("image: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("image: %s is not empty; give a new folder for the OCI layout", dir)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(r.Index, layout.WithAnnotations(map[string]string{refNameAnnotation: ref})); err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", dir, err)
	}
	if err := p.AppendImage(r.SBOM, layout.WithAnnotations(map[string]string{refNameAnnotation: ref + ".sbom"})); err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", dir, err)
	}
	return nil
}

// ReadReleaseLayout reads back what WriteReleaseLayout wrote.
func ReadReleaseLayout(dir string) (Release, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return Release{}, fmt.Errorf("image: %w", err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return Release{}, fmt.Errorf("image: %s: %w", dir, err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return Release{}, fmt.Errorf("image: %s: %w", dir, err)
	}
	var r Release
	for _, d := range m.Manifests {
		switch {
		case d.MediaType == types.OCIImageIndex && r.Index == nil:
			if r.Index, err = top.ImageIndex(d.Digest); err != nil {
				return Release{}, err
			}
		case d.MediaType == types.OCIManifestSchema1 && r.SBOM == nil:
			if r.SBOM, err = top.Image(d.Digest); err != nil {
				return Release{}, err
			}
		}
	}
	if r.Index == nil || r.SBOM == nil {
		return Release{}, fmt.Errorf("image: %s holds no index with an SBOM (was it built with --arch?)", dir)
	}
	return r, nil
}

// SBOMDocument returns the SPDX document an SBOM artifact carries.
func SBOMDocument(sbom v1.Image) ([]byte, error) {
	layers, err := sbom.Layers()
	if err != nil || len(layers) != 1 {
		return nil, fmt.Errorf("image: SBOM artifact: %d layers (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Push copies a release to a registry, as `crane copy` would: every image
// of the index, the index under ref's tag, and the SBOM (its subject links
// it to the index; registries with the referrers API list it there).
func Push(r Release, ref string, opts ...remote.Option) (v1.Hash, error) {
	tag, err := name.ParseReference(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image: %q: %w", ref, err)
	}
	if err := remote.WriteIndex(tag, r.Index, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("image: push %s: %w", ref, err)
	}
	d, err := r.SBOM.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(tag.Context().Digest(d.String()), r.SBOM, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("image: push the SBOM of %s: %w", ref, err)
	}
	return r.Index.Digest()
}
