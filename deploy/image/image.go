package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed layout. The Dockerfile and the Kubernetes manifests rely
// on these values; TestDockerfileMatchesTheBuilder keeps the Dockerfile in step.
const (
	// BinaryPath is where the scgate binary lives, and the entrypoint.
	BinaryPath = "/usr/local/bin/scgate"
	// CABundlePath is the CA bundle Go's crypto/x509 reads first on Linux.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// UID and GID are the non-root user the image runs as ("nonroot", the
	// same numbers as distroless's nonroot user, so a Pod's runAsUser agrees
	// with either image).
	UID = 65532
	GID = 65532
	// ConfigPath is the default config file (SCGATE_CONFIG), where the
	// manifests mount the ConfigMap (a folder of its own: a volume mounted
	// inside another volume's folder is fragile).
	ConfigPath = "/etc/scgate/config/config.toml"
)

// ExposedPorts are the ports the example configs use: the sidecar's loopback
// listener, the central gateway's TLS listener, and the admin listener.
var ExposedPorts = []string{"8080/tcp", "8443/tcp", "9090/tcp"}

// Options describes one image build. Binary and CABundle are required.
type Options struct {
	// Binary is the scgate binary: static (CGO_ENABLED=0) and built for Arch.
	Binary []byte
	// CABundle is a PEM bundle of trusted roots, normally Debian's
	// /etc/ssl/certs/ca-certificates.crt from the ca-certificates package.
	CABundle []byte
	// Arch is the GOARCH the binary was built for. "" means: read it from
	// the binary's ELF header.
	Arch string
	// Version and Revision become OCI labels; "" means "dev" and "unknown".
	Version  string
	Revision string
	// Source is the repository URL for the org.opencontainers.image.source
	// label. "" means the project's module path as a URL.
	Source string
	// Created is the time recorded in the config, the history and every file
	// of the layers. The zero value means the Unix epoch, so that the same
	// inputs always give the same image digest (reproducible builds); pass
	// the commit time (SOURCE_DATE_EPOCH) to record something meaningful.
	Created time.Time
}

// Build assembles the image: an empty base, one layer with the files a
// static Go binary expects of a Linux system (passwd and group with the
// non-root user, nsswitch.conf, the CA bundle, /tmp and the user's home),
// one layer with the binary, and a config with the entrypoint, the user,
// the exposed ports and OCI labels. Nothing is fetched from anywhere.
func Build(opts Options) (v1.Image, error) {
	if len(opts.Binary) == 0 {
		return nil, errors.New("image: the scgate binary is empty")
	}
	if len(opts.CABundle) == 0 {
		return nil, errors.New("image: the CA bundle is empty (install Debian's ca-certificates)")
	}
	opts = opts.withDefaults()
	if opts.Arch == "" {
		arch, err := ArchOf(opts.Binary)
		if err != nil {
			return nil, err
		}
		opts.Arch = arch
	}

	base, err := newLayer(systemFiles(opts), opts.Created)
	if err != nil {
		return nil, fmt.Errorf("image: system layer: %w", err)
	}
	bin, err := newLayer([]file{{path: BinaryPath, mode: 0o755, data: opts.Binary}}, opts.Created)
	if err != nil {
		return nil, fmt.Errorf("image: binary layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, configFile(opts))
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	created := v1.Time{Time: opts.Created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "scgate-image: passwd, group, nsswitch.conf, CA bundle, /tmp",
		}},
		mutate.Addendum{Layer: bin, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "scgate-image: " + BinaryPath,
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("image: layers: %w", err)
	}
	return img, nil
}

func (o Options) withDefaults() Options {
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Revision == "" {
		o.Revision = "unknown"
	}
	if o.Source == "" {
		o.Source = "https://github.com/scgate/scgate"
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC()
	return o
}

// Labels are the OCI annotations the image config carries.
func (o Options) Labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "scgate",
		"org.opencontainers.image.description": "Authenticating gateway in front of the Streaming.Center broadcaster API",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
}

func configFile(o Options) *v1.ConfigFile {
	ports := make(map[string]struct{}, len(ExposedPorts))
	for _, p := range ExposedPorts {
		ports[p] = struct{}{}
	}
	return &v1.ConfigFile{
		Architecture: o.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.Created},
		Config: v1.Config{
			User:         strconv.Itoa(UID) + ":" + strconv.Itoa(GID),
			Entrypoint:   []string{BinaryPath},
			Cmd:          []string{"run"},
			Env:          []string{"SCGATE_CONFIG=" + ConfigPath},
			WorkingDir:   "/",
			ExposedPorts: ports,
			Labels:       o.Labels(),
			StopSignal:   "SIGTERM",
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
}

// file is one entry of a layer: a directory when data is nil and dir is set.
type file struct {
	path     string
	mode     int64
	dir      bool
	uid, gid int
	data     []byte
}

func systemFiles(o Options) []file {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	return []file{
		{path: "/etc", mode: 0o755, dir: true},
		{path: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "/etc/group", mode: 0o644, data: []byte(group)},
		// Go's pure-Go resolver reads this to order /etc/hosts before DNS.
		{path: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{path: "/etc/ssl", mode: 0o755, dir: true},
		{path: "/etc/ssl/certs", mode: 0o755, dir: true},
		{path: CABundlePath, mode: 0o644, data: o.CABundle},
		{path: "/home", mode: 0o755, dir: true},
		{path: "/home/nonroot", mode: 0o700, dir: true, uid: UID, gid: GID},
		{path: "/tmp", mode: 0o1777, dir: true},
		{path: "/usr", mode: 0o755, dir: true},
		{path: "/usr/local", mode: 0o755, dir: true},
		{path: "/usr/local/bin", mode: 0o755, dir: true},
	}
}

// newLayer writes files into a tar with fixed owners and times, so the same
// files always give the same layer digest, and wraps it as a gzip OCI layer.
func newLayer(files []file, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name:    f.path[1:], // layer paths are relative to the root
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// ReadOptions reads the binary and the CA bundle from files into opts.
func ReadOptions(binaryPath, caBundlePath string, opts Options) (Options, error) {
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return opts, fmt.Errorf("image: binary: %w", err)
	}
	ca, err := os.ReadFile(caBundlePath)
	if err != nil {
		return opts, fmt.Errorf("image: CA bundle: %w (on Debian: apt-get install ca-certificates)", err)
	}
	opts.Binary, opts.CABundle = bin, ca
	return opts, nil
}
