// Command scgate-image builds scgate's OCI image from static binaries without
// a Docker engine or a registry, verifies it, and pushes it.
//
//	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=v1.2.3" -o dist/scgate ./cmd/scgate
//	cd deploy && go run ./cmd/scgate-image build --binary ../dist/scgate --version v1.2.3 --layout ../dist/oci
//	cd deploy && go run ./cmd/scgate-image verify --layout ../dist/oci
//
// A release is one OCI index for several architectures with an SPDX SBOM:
//
//	cd deploy && go run ./cmd/scgate-image release --binary amd64=../dist/scgate-amd64 \
//	    --binary arm64=../dist/scgate-arm64 --version v1.2.3 --layout ../dist/release
//	cd deploy && go run ./cmd/scgate-image verify-release --layout ../dist/release
//	cd deploy && go run ./cmd/scgate-image push --layout ../dist/release --to ghcr.io/ORG/scgate:v1.2.3
//
// Exit codes: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/scgate/scgate/deploy/image"
)

const usage = `Usage:
  scgate-image build --binary FILE --layout DIR [--tarball FILE] [--version V] [--revision R]
                     [--created RFC3339|UNIX] [--ca-bundle FILE] [--tag NAME:TAG] [--source URL]
  scgate-image verify --layout DIR
  scgate-image release --binary ARCH=FILE... --layout DIR [--version V] [--revision R]
                     [--created RFC3339|UNIX] [--ca-bundle FILE] [--tag NAME:TAG] [--source URL]
  scgate-image verify-release --layout DIR
  scgate-image push --layout DIR --to REGISTRY/REPOSITORY:TAG
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) == 0:
		err = usageError{"no command given"}
	case args[0] == "build":
		err = cmdBuild(args[1:], stdout, stderr)
	case args[0] == "verify":
		err = cmdVerify(ctx, args[1:], stdout, stderr)
	case args[0] == "release":
		err = cmdRelease(args[1:], stdout, stderr)
	case args[0] == "verify-release":
		err = cmdVerifyRelease(ctx, args[1:], stdout, stderr)
	case args[0] == "push":
		err = cmdPush(ctx, args[1:], stdout, stderr)
	default:
		err = usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "scgate-image: %s\n\n%s", ue.msg, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "scgate-image: %v\n", err)
		return 1
	}
}

func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func cmdBuild(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scgate-image build", flag.ContinueOnError)
	binary := fs.String("binary", "", "the static scgate binary (required)")
	caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle (Debian's ca-certificates)")
	layoutDir := fs.String("layout", "", "write the image as an OCI layout into this new folder (required)")
	tarPath := fs.String("tarball", "", "also write a tarball for docker load / podman load")
	version := fs.String("version", "dev", "version label; must match what the binary prints")
	revision := fs.String("revision", "unknown", "source revision label (git commit)")
	source := fs.String("source", "", "source repository URL label")
	created := fs.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "creation time: RFC 3339 or Unix seconds (default $SOURCE_DATE_EPOCH, else the epoch)")
	tag := fs.String("tag", "", "image name in the layout and tarball (default scgate:VERSION)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *binary == "" || *layoutDir == "" {
		return usageError{"--binary and --layout are required"}
	}
	when, err := parseTime(*created)
	if err != nil {
		return usageError{err.Error()}
	}
	if *tag == "" {
		*tag = "scgate:" + *version
	}
	opts, err := image.ReadOptions(*binary, *caBundle, image.Options{
		Version: *version, Revision: *revision, Source: *source, Created: when,
	})
	if err != nil {
		return err
	}
	img, err := image.Build(opts)
	if err != nil {
		return err
	}
	if err := image.WriteLayout(*layoutDir, *tag, img); err != nil {
		return err
	}
	if *tarPath != "" {
		if err := image.WriteTarball(*tarPath, *tag, img); err != nil {
			return err
		}
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "built %s (%s) into %s\n", *tag, d, *layoutDir)
	return nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--created %q: give RFC 3339 or Unix seconds", s)
	}
	return t, nil
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scgate-image verify", flag.ContinueOnError)
	layoutDir := fs.String("layout", "", "the OCI layout to verify (required)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *layoutDir == "" {
		return usageError{"--layout is required"}
	}
	img, err := image.ReadLayout(*layoutDir)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "scgate-image-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	rep, err := image.Verify(ctx, img, work)
	if err != nil {
		return fmt.Errorf("%s: %w", *layoutDir, err)
	}
	fmt.Fprintf(stdout, "%s: ok\n  digest %s\n  %d layers, %.1f MiB compressed, binary %.1f MiB\n  %s\n",
		*layoutDir, rep.Digest, rep.Layers, float64(rep.Size)/(1<<20), float64(rep.BinaryBytes)/(1<<20), rep.Version)
	return nil
}

// binaryFlags collects --binary ARCH=FILE.
type binaryFlags map[string]string

func (b binaryFlags) String() string { return fmt.Sprint(map[string]string(b)) }
func (b binaryFlags) Set(v string) error {
	arch, file, ok := strings.Cut(v, "=")
	if !ok || arch == "" || file == "" {
		return fmt.Errorf("--binary %q: give ARCH=FILE, e.g. arm64=dist/scgate-arm64", v)
	}
	b[arch] = file
	return nil
}

func cmdRelease(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scgate-image release", flag.ContinueOnError)
	bins := binaryFlags{}
	fs.Var(bins, "binary", "ARCH=FILE: the static scgate binary for linux/ARCH (repeat for each architecture)")
	caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle (Debian's ca-certificates)")
	layoutDir := fs.String("layout", "", "write the index and its SBOM as an OCI layout into this new folder (required)")
	version := fs.String("version", "dev", "version label; must match what the binaries print")
	revision := fs.String("revision", "unknown", "source revision label (git commit)")
	source := fs.String("source", "", "source repository URL label")
	created := fs.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "creation time: RFC 3339 or Unix seconds (default $SOURCE_DATE_EPOCH, else the epoch)")
	tag := fs.String("tag", "", "name in the layout (default scgate:VERSION)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if len(bins) == 0 || *layoutDir == "" {
		return usageError{"--binary ARCH=FILE and --layout are required"}
	}
	when, err := parseTime(*created)
	if err != nil {
		return usageError{err.Error()}
	}
	if *tag == "" {
		*tag = "scgate:" + *version
	}
	ca, err := os.ReadFile(*caBundle)
	if err != nil {
		return fmt.Errorf("CA bundle: %w (on Debian: apt-get install ca-certificates)", err)
	}
	binaries := map[string][]byte{}
	for arch, f := range bins {
		if binaries[arch], err = os.ReadFile(f); err != nil {
			return err
		}
	}
	r, err := image.BuildRelease(image.Options{CABundle: ca, Version: *version, Revision: *revision, Source: *source, Created: when}, binaries)
	if err != nil {
		return err
	}
	if err := image.WriteReleaseLayout(*layoutDir, *tag, r); err != nil {
		return err
	}
	d, err := r.Index.Digest()
	if err != nil {
		return err
	}
	sd, err := r.SBOM.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "built %s (index %s, SBOM %s) into %s\n", *tag, d, sd, *layoutDir)
	return nil
}

func cmdVerifyRelease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scgate-image verify-release", flag.ContinueOnError)
	layoutDir := fs.String("layout", "", "the OCI layout of a release (required)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *layoutDir == "" {
		return usageError{"--layout is required"}
	}
	r, err := image.ReadReleaseLayout(*layoutDir)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "scgate-image-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	reps, err := image.VerifyRelease(ctx, r, work)
	if err != nil {
		return fmt.Errorf("%s: %w", *layoutDir, err)
	}
	d, _ := r.Index.Digest()
	fmt.Fprintf(stdout, "%s: ok, index %s with an SPDX SBOM\n", *layoutDir, d)
	for _, rep := range reps {
		fmt.Fprintf(stdout, "  %s: %.1f MiB compressed; %s\n", rep.Digest, float64(rep.Size)/(1<<20), rep.Version)
	}
	return nil
}

func cmdPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scgate-image push", flag.ContinueOnError)
	layoutDir := fs.String("layout", "", "the OCI layout of a release (required)")
	to := fs.String("to", "", "REGISTRY/REPOSITORY:TAG to push to (required); credentials as docker login stored them")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *layoutDir == "" || *to == "" {
		return usageError{"--layout and --to are required"}
	}
	r, err := image.ReadReleaseLayout(*layoutDir)
	if err != nil {
		return err
	}
	d, err := image.Push(r, *to, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushed %s@%s\n", *to, d)
	return nil
}
