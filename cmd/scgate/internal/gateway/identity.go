package gateway

import (
	"context"
	"time"

	"github.com/scgate/scgate/proxy/identity"
)

// jwksFetchTimeout bounds the first fetch of the JWT key set, which a start
// waits for so that a wrong URL or file fails at once.
const jwksFetchTimeout = 30 * time.Second

// buildIdentity builds the resolvers of identity.order, in that order.
func (g *Gateway) buildIdentity(ctx context.Context) (identity.Resolver, error) {
	cfg := g.cfg
	id := cfg.Identity
	proxies, err := id.TrustedProxySet()
	if err != nil {
		return nil, cfg.Wrap(err, "identity", "trusted_proxies")
	}
	var chain identity.Chain
	for _, name := range id.Order {
		var r identity.Resolver
		var err error
		switch name {
		case "static":
			r, err = identity.Static(id.Static)
		case "cidr":
			r, err = identity.NewCIDR(id.CIDROptions(proxies))
		case "mtls":
			r, err = identity.NewMTLS(id.MTLSOptions(newAnchorSource(g.clientCAs.Load).Anchors))
		case "jwt":
			r, err = g.buildJWT(ctx)
		case "header":
			r, err = identity.NewHeader(id.Header.HeaderOptions(proxies))
		}
		if err != nil {
			return nil, cfg.Wrap(err, "identity", name)
		}
		chain = append(chain, r)
	}
	return chain, nil
}

// buildJWT fetches the key set once (so a wrong URL or file fails at start)
// and returns the jwt resolver.
func (g *Gateway) buildJWT(ctx context.Context) (identity.Resolver, error) {
	o, err := g.cfg.JWKSOptions()
	if err != nil {
		return nil, err
	}
	o.Logger = g.log.Named("identity")
	fetchCtx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	keys, err := identity.NewJWKS(fetchCtx, o)
	if err != nil {
		return nil, err
	}
	return identity.NewJWT(g.cfg.Identity.JWT.JWTOptions(keys))
}
