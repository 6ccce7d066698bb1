// Package image builds scgate's OCI image without a Docker engine or a
// registry: an empty base, a layer of system files (passwd and group with a
// non-root user, nsswitch.conf, Debian's CA bundle), a layer with the static
// binary, and a config with the entrypoint, user, ports and OCI labels. It
// writes the image as an OCI layout (and optionally a docker-loadable
// tarball), and verifies an image the way a cluster would use it.
//
// The command is deploy/cmd/scgate-image; .ci/run builds and verifies the
// image with it.
package image
