// Package deploy holds no code of its own: it is the home of the tests of
// scgate's deployment artefacts, in a Go module of their own so that Helm,
// the Kubernetes API types and Prometheus stay out of scgate's go.mod.
//
//   - kubernetes/: plain manifests (sidecar, gateway, monitoring)
//   - helm/scgate/: the Helm chart, both modes, with values.schema.json
//   - monitoring/: the alert rules and the Grafana dashboard
//   - image/, cmd/scgate-image/: the OCI image build without a Docker engine
//   - Dockerfile: the same image for users with a Docker engine
//
// The tests render the chart with Helm's SDK, decode every manifest strictly
// into the Kubernetes API types, check the wiring between the pods and
// scgate's config (and run `scgate check` on the config in a layout of the
// pod's volumes), parse the alerts with Prometheus's own parsers, and check
// every metric the alerts and the dashboard name against a live /metrics.
// Run them from this folder: go vet ./... && go test -count=1 ./...
package deploy
