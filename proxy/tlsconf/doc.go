// Package tlsconf provides what scgate's listener needs to terminate TLS: a
// source of the server certificate and, for mTLS, the pool of client CAs.
//
// Certificate sources are anything with a
// GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) method:
//
//   - Files serves a PEM pair from disk and reloads it when the files change
//     (including a Kubernetes Secret's "..data" symlink swap);
//   - SelfSigned makes a development certificate;
//   - ACME obtains and renews certificates from an ACME CA through a
//     private certmagic cache and config (never certmagic's package-level
//     defaults), answering HTTP-01 on a handler the caller serves and
//     TLS-ALPN-01 through its GetCertificate and NextProtos. ServerConfig
//     lets the CA's acme-tls/1 validation handshake in without a client
//     certificate, and serves nothing else on it.
//
// ClientCAs is the reloadable client-CA bundle, and ServerConfig combines a
// certificate source and ClientCAs into the listener's tls.Config.
//
// Reloading follows one rule everywhere: the new state is built off to the
// side and validated completely, then swapped in with one atomic store. A
// reload that fails is reported (to OnReload and, from Run, to the logger)
// and the previous state keeps serving. Handshakes only ever do an atomic
// load; they never wait for a reload.
package tlsconf
