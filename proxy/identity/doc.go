// Package identity establishes who is calling scgate. A Resolver looks at one
// request and either names the caller, with the identity string the vault's
// [callers] table is keyed by, or says it cannot tell (ErrNoIdentity), or
// refuses the request (any other error, which the proxy turns into 401).
//
// The resolvers here are:
//
//   - Static: everyone on the listener is one caller (a sidecar on loopback);
//   - NewCIDR: the caller is decided by the source network;
//   - NewMTLS: the caller is named by its verified client certificate: a
//     SPIFFE ID from the URI SAN (checked against its own trust domain's
//     bundle), the first DNS SAN, or the common name; the chain is verified
//     again on every request against the current CAs and clock, with the
//     verdict cached per connection (WithPeerCache);
//   - NewJWT: the caller presents a signed token (a Kubernetes projected
//     service-account token) as "Authorization: Bearer", verified against a
//     JWKS cache (NewJWKS) from a file, a URL or OIDC discovery, refreshed
//     in the background so that a slow issuer never queues requests;
//   - NewHeader: a trusted proxy in front of scgate (Istio, Envoy) names the
//     caller in a header such as X-Forwarded-Client-Cert.
//
// TrustedProxies is the one rule for believing forwarding headers: the header
// resolver and, for X-Forwarded-For, the cidr resolver read them only from a
// direct peer in that set.
//
// Chain tries several in order, so a listener can accept, say, mTLS callers
// and fall back to a network rule for a trusted subnet.
//
// The distinction between "cannot tell" and "refused" matters: a caller who
// presented something (a certificate from the right CA) that does not name
// an acceptable identity is refused outright, rather than falling through to
// a weaker resolver further down the chain.
//
// Error texts may be logged but never contain a credential; resolvers name
// what was wrong (a trust domain, a missing SAN) without echoing arbitrary
// certificate content, since a URI SAN could carry userinfo.
package identity
