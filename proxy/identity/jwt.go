package identity

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// JWTOptions configures NewJWT.
type JWTOptions struct {
	// Issuer is the exact "iss" a token must carry; for Kubernetes, the
	// cluster's service-account issuer (kubectl get --raw
	// /.well-known/openid-configuration shows it). Required.
	Issuer string
	// Audiences are scgate's own audiences: a token must name at least one
	// in "aud", so a token minted for another service is refused. Required.
	Audiences []string
	// Keys verifies signatures. Required.
	Keys *JWKS
	// Leeway is the clock skew allowed on exp, nbf and iat (default 30s, at
	// most MaxLeeway).
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// allowedAlgorithms are the only signature algorithms accepted: asymmetric
// ones, so that "none" and HMAC (which would let anyone holding the public
// key forge a token) are refused before anything else is looked at.
var allowedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// MaxLeeway bounds JWTOptions.Leeway: a larger skew would keep expired
// tokens alive for longer than clocks ever drift.
const MaxLeeway = 5 * time.Minute

// maxTokenLen bounds the token parsed; projected service-account tokens are
// about 1 KiB.
const maxTokenLen = 16 << 10

type jwtResolver struct {
	issuer    string
	audiences []string
	keys      *JWKS
	leeway    time.Duration
	now       func() time.Time
}

// NewJWT returns a Resolver for callers that present a signed token, such as
// a Kubernetes projected service-account token, as
// "Authorization: Bearer <token>". The token must be a compact JWS signed
// with RS256 or ES256 by a key in opts.Keys, with the configured issuer, one
// of scgate's audiences, and exp and nbf (within Leeway); the identity is
// its "sub" ("system:serviceaccount:NS:NAME" for Kubernetes).
//
// A request without an Authorization header, or with another scheme (the
// broadcaster's own "JWT ..." login tokens), gives ErrNoIdentity; a Bearer
// token that fails any check is refused. Refusals say which check failed and
// never contain the token. The proxy removes the Bearer header before it
// forwards a request, so the token never reaches the broadcaster.
func NewJWT(opts JWTOptions) (Resolver, error) {
	switch {
	case opts.Issuer == "":
		return nil, errors.New("identity: jwt: the issuer is required (for Kubernetes: the cluster's service-account issuer URL)")
	case len(opts.Audiences) == 0:
		return nil, errors.New("identity: jwt: at least one audience is required: the audience callers request their tokens for, e.g. \"scgate\"")
	case opts.Keys == nil:
		return nil, errors.New("identity: jwt: a key set (JWKS file, URL or discovery URL) is required")
	}
	if opts.Leeway > MaxLeeway {
		return nil, fmt.Errorf("identity: jwt: leeway %v is more than %v: fix the clocks instead", opts.Leeway, MaxLeeway)
	}
	for i, a := range opts.Audiences {
		if a == "" {
			return nil, fmt.Errorf("identity: jwt: audience %d is empty", i+1)
		}
	}
	j := &jwtResolver{issuer: opts.Issuer, audiences: opts.Audiences, keys: opts.Keys, leeway: opts.Leeway, now: opts.Now}
	if j.leeway <= 0 {
		j.leeway = 30 * time.Second
	}
	if j.now == nil {
		j.now = time.Now
	}
	return j, nil
}

// BearerToken returns the token of an "Authorization: Bearer" header, and
// whether there was one. The scheme is case-insensitive (RFC 9110).
func BearerToken(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		return "", false
	}
	return strings.TrimSpace(v[7:]), true
}

// jwtError is a refusal with a fixed reason: go-jose's own messages are not
// passed on, so nothing of the token can reach a log line through them.
type jwtError struct{ reason string }

func (e *jwtError) Error() string { return "identity: bearer token refused: " + e.reason }

func refuse(format string, args ...any) error {
	return &jwtError{reason: fmt.Sprintf(format, args...)}
}

// Resolve implements Resolver.
func (j *jwtResolver) Resolve(r *http.Request) (string, error) {
	if len(r.Header.Values("Authorization")) > 1 {
		return "", refuse("more than one Authorization header")
	}
	raw, ok := BearerToken(r.Header)
	if !ok {
		return "", ErrNoIdentity
	}
	if len(raw) > maxTokenLen {
		return "", refuse("longer than %d bytes", maxTokenLen)
	}
	tok, err := jwt.ParseSigned(raw, allowedAlgorithms)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return "", refuse("signature algorithm %s is not allowed (only RS256 and ES256)", algName(alg.Got))
		}
		return "", refuse("not a compact JWS (header.payload.signature in base64url)")
	}
	if len(tok.Headers) != 1 {
		return "", refuse("want exactly one signature")
	}
	hdr := tok.Headers[0]
	keys, err := j.keys.keys(r.Context(), hdr.KeyID)
	if err != nil {
		return "", refuse("%v", err)
	}
	var claims jwt.Claims
	verified := false
	for _, key := range keys {
		if key.Algorithm != "" && key.Algorithm != hdr.Algorithm {
			continue
		}
		if err := tok.Claims(key.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", refuse("signature does not verify with the issuer's key")
	}
	return j.check(&claims)
}

// check applies the claim rules to a token whose signature verified.
func (j *jwtResolver) check(c *jwt.Claims) (string, error) {
	switch {
	case c.Issuer == "":
		return "", refuse("no iss claim")
	case c.Issuer != j.issuer:
		return "", refuse("issuer is not %q", j.issuer)
	case len(c.Audience) == 0:
		return "", refuse("no aud claim")
	case c.Expiry == nil:
		return "", refuse("no exp claim")
	case c.NotBefore == nil:
		return "", refuse("no nbf claim")
	}
	err := c.ValidateWithLeeway(jwt.Expected{AnyAudience: j.audiences, Time: j.now()}, j.leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidAudience):
		return "", refuse("audience is none of %q (request the token with that audience)", j.audiences)
	case errors.Is(err, jwt.ErrExpired):
		return "", refuse("expired at %s", c.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return "", refuse("not valid before %s", c.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return "", refuse("issued in the future (check the clocks)")
	case err != nil:
		return "", refuse("claims are not valid")
	}
	if err := checkIdentity(c.Subject); err != nil {
		return "", refuse("sub claim is unusable: %v", err)
	}
	return c.Subject, nil
}

// algName names an algorithm for a message only when it is a registered
// one: the header is attacker-written text.
func algName(a jose.SignatureAlgorithm) string {
	switch a {
	case "none", jose.HS256, jose.HS384, jose.HS512, jose.RS384, jose.RS512,
		jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA:
		return string(a)
	}
	return "(unregistered)"
}
