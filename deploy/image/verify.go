package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Report is what Verify found out about an image.
type Report struct {
	Digest      v1.Hash
	Size        int64  // compressed: manifest, config and layers, as a registry stores them
	Version     string // what the extracted binary printed for "scgate version"
	Layers      int
	BinaryBytes int64
}

// Verify checks an image the way a cluster will use it: OCI media types, a
// numeric non-root user that /etc/passwd knows (so runAsNonRoot can check
// it), the scgate entrypoint, the exposed ports and labels, a CA bundle that
// parses, no shell, and a static binary that, extracted from the layers
// into workDir and run, answers "scgate version". Every problem is returned.
func Verify(ctx context.Context, img v1.Image, workDir string) (Report, error) {
	var rep Report
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if mt, err := img.MediaType(); err != nil || mt != types.OCIManifestSchema1 {
		bad("manifest media type %q (%v), want %q", mt, err, types.OCIManifestSchema1)
	}
	m, err := img.Manifest()
	if err != nil {
		return rep, fmt.Errorf("image: manifest: %w", err)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		bad("config media type %q, want %q", m.Config.MediaType, types.OCIConfigJSON)
	}
	rep.Layers = len(m.Layers)
	if rep.Digest, err = img.Digest(); err != nil {
		return rep, fmt.Errorf("image: digest: %w", err)
	}
	if rep.Size, err = compressedSize(img, m); err != nil {
		return rep, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return rep, fmt.Errorf("image: config: %w", err)
	}
	uid := checkConfig(cf, bad)

	fsys, err := readFS(img)
	if err != nil {
		return rep, err
	}
	checkFiles(fsys, uid, bad)

	if bin, ok := fsys[strings.TrimPrefix(BinaryPath, "/")]; ok && cf.Architecture != runtime.GOARCH {
		// Another architecture's binary cannot run here: check its ELF header.
		rep.BinaryBytes = int64(len(bin.data))
		if arch, err := ArchOf(bin.data); err != nil || arch != cf.Architecture {
			bad("%s is built for %q (%v), the config says %q", BinaryPath, arch, err, cf.Architecture)
		}
		rep.Version = "(linux/" + cf.Architecture + ": not run on " + runtime.GOARCH + ")"
	} else if ok {
		rep.BinaryBytes = int64(len(bin.data))
		rep.Version, err = runVersion(ctx, bin.data, workDir)
		if err != nil {
			bad("%s version: %v", BinaryPath, err)
		} else if want := cf.Config.Labels["org.opencontainers.image.version"]; !strings.Contains(rep.Version, "scgate "+want+" ") {
			bad("%s version printed %q, want the labelled version %q", BinaryPath, rep.Version, want)
		}
	}
	return rep, errors.Join(errs...)
}

func compressedSize(img v1.Image, m *v1.Manifest) (int64, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return 0, fmt.Errorf("image: manifest: %w", err)
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// checkConfig checks the config and returns the user's uid (-1 if unusable).
func checkConfig(cf *v1.ConfigFile, bad func(string, ...any)) int {
	if cf.OS != "linux" || cf.Architecture == "" {
		bad("platform %s/%s, want linux/<arch>", cf.OS, cf.Architecture)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{BinaryPath}) {
		bad("entrypoint %q, want [%q]", cf.Config.Entrypoint, BinaryPath)
	}
	if !slices.Contains(cf.Config.Env, "SCGATE_CONFIG="+ConfigPath) {
		bad("env %q lacks SCGATE_CONFIG=%s", cf.Config.Env, ConfigPath)
	}
	for _, p := range ExposedPorts {
		if _, ok := cf.Config.ExposedPorts[p]; !ok {
			bad("port %s is not exposed", p)
		}
	}
	for _, l := range []string{"title", "version", "revision", "source", "created"} {
		if cf.Config.Labels["org.opencontainers.image."+l] == "" {
			bad("label org.opencontainers.image.%s is missing", l)
		}
	}
	// Kubernetes can enforce runAsNonRoot only for a numeric user.
	u, g, _ := strings.Cut(cf.Config.User, ":")
	uid, err := strconv.Atoi(u)
	if err != nil || uid <= 0 {
		bad("user %q: want a numeric non-root uid (uid:gid)", cf.Config.User)
		return -1
	}
	if gid, err := strconv.Atoi(g); err != nil || gid <= 0 {
		bad("user %q: want a numeric non-root gid (uid:gid)", cf.Config.User)
	}
	return uid
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

// readFS flattens the layers into path → entry (paths without a leading /).
func readFS(img v1.Image) (map[string]entry, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	fsys := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fsys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("image: reading layers: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("image: reading %s: %w", hdr.Name, err)
		}
		fsys[strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "/"), "/")] = entry{hdr: hdr, data: data}
	}
}

func checkFiles(fsys map[string]entry, uid int, bad func(string, ...any)) {
	bin, ok := fsys[strings.TrimPrefix(BinaryPath, "/")]
	switch {
	case !ok:
		bad("%s is missing", BinaryPath)
	case bin.hdr.Typeflag != tar.TypeReg || bin.hdr.Mode&0o111 == 0:
		bad("%s is not an executable file (mode %o)", BinaryPath, bin.hdr.Mode)
	default:
		if err := checkStatic(bin.data); err != nil {
			bad("%s: %v", BinaryPath, err)
		}
	}
	if uid >= 0 && !passwdHas(fsys["etc/passwd"].data, uid) {
		bad("/etc/passwd has no entry for uid %d", uid)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(fsys[strings.TrimPrefix(CABundlePath, "/")].data) {
		bad("%s is missing or holds no PEM certificate", CABundlePath)
	}
	for _, sh := range []string{"bin/sh", "bin/bash", "bin/busybox"} {
		if _, ok := fsys[sh]; ok {
			bad("/%s exists: the image is meant to have no shell", sh)
		}
	}
	for p, e := range fsys {
		if e.hdr.Mode&(0o4000|0o2000) != 0 {
			bad("/%s is setuid or setgid", p)
		}
	}
}

// checkStatic reports an ELF with a program interpreter: a dynamically
// linked binary would not start in an image without a libc.
func checkStatic(bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (build it with CGO_ENABLED=0)")
		}
	}
	return nil
}

func passwdHas(passwd []byte, uid int) bool {
	sc := bufio.NewScanner(bytes.NewReader(passwd))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) == 7 && f[2] == strconv.Itoa(uid) {
			return true
		}
	}
	return false
}

// runVersion writes the binary into workDir and runs "scgate version".
func runVersion(ctx context.Context, bin []byte, workDir string) (string, error) {
	path := filepath.Join(workDir, "scgate-from-image")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// ArchOf returns the GOARCH of an ELF binary, for the image's platform.
func ArchOf(bin []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("image: the binary is not an ELF file: %w", err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("image: unsupported machine %s", f.Machine)
}

// VerifyRelease verifies every image of a release's index (Verify; the
// binary of the machine's own architecture is run), that each index entry
// names its image's platform, and that the SBOM is an SPDX document whose
// subject is the index and which lists each image's binary by its SHA-256.
func VerifyRelease(ctx context.Context, r Release, workDir string) ([]Report, error) {
	var errs []error
	m, err := r.Index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image: index: %w", err)
	}
	if mt, _ := r.Index.MediaType(); mt != types.OCIImageIndex {
		errs = append(errs, fmt.Errorf("index media type %q, want %q", mt, types.OCIImageIndex))
	}
	var reps []Report
	doc, err := SBOMDocument(r.SBOM)
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		img, err := r.Index.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		rep, err := Verify(ctx, img, workDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Digest, err))
		}
		reps = append(reps, rep)
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		if d.Platform == nil || d.Platform.OS != cf.OS || d.Platform.Architecture != cf.Architecture {
			errs = append(errs, fmt.Errorf("index entry %s: platform %v, the image is %s/%s", d.Digest, d.Platform, cf.OS, cf.Architecture))
		}
		fsys, err := readFS(img)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(fsys[strings.TrimPrefix(BinaryPath, "/")].data)
		if !bytes.Contains(doc, []byte(hex.EncodeToString(sum[:]))) {
			errs = append(errs, fmt.Errorf("the SBOM does not list the %s binary's SHA-256", cf.Architecture))
		}
	}
	sm, err := r.SBOM.Manifest()
	if err != nil {
		return nil, err
	}
	idxDigest, err := r.Index.Digest()
	if err != nil {
		return nil, err
	}
	if sm.ArtifactType != SBOMMediaType || sm.Subject == nil || sm.Subject.Digest != idxDigest {
		errs = append(errs, fmt.Errorf("the SBOM artifact (type %q, subject %v) is not attached to the index %s", sm.ArtifactType, sm.Subject, idxDigest))
	}
	var head struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name string `json:"name"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(doc, &head); err != nil || head.SPDXVersion != "SPDX-2.3" || len(head.Packages) < len(m.Manifests)+2 {
		errs = append(errs, fmt.Errorf("the SBOM is not an SPDX 2.3 document with the binaries and their modules (%v)", err))
	}
	return reps, errors.Join(errs...)
}
