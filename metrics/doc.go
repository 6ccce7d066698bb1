// Package metrics holds scgate's Prometheus collectors and its admin mux
// (/metrics, /healthz, /readyz).
//
// Every collector lives on one private registry created by New, never on
// prometheus.DefaultRegisterer, so that tests and several gateways in one
// process do not share state. Label values are bounded: caller identities come
// from the vault, routes are endpoint templates, codes are the gateway's own.
package metrics
