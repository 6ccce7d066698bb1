package identity

import (
	"context"
	"crypto/x509"
	"sync"
	"time"
)

// peerCacheKey is the context key of a connection's peerCache.
type peerCacheKey struct{}

// peerCache remembers one connection's last mTLS verdict, so that the
// per-request re-verification costs a few comparisons instead of a chain
// verification. A verdict is reused only for the same resolver, the same
// leaf, the same Anchors (a reload makes new ones) and while the clock is
// inside the verified chain's validity window.
type peerCache struct {
	mu        sync.Mutex // HTTP/2 serves a connection's streams concurrently
	res       *mtls
	leaf      *x509.Certificate
	anchors   *Anchors
	id        string
	notBefore time.Time
	notAfter  time.Time
}

// WithPeerCache returns ctx carrying an empty per-connection cache for the
// mTLS resolver. Servers call it from http.Server.ConnContext, so that each
// connection has its own; without it every request verifies the chain anew.
func WithPeerCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, peerCacheKey{}, &peerCache{})
}

func peerCacheFrom(ctx context.Context) *peerCache {
	c, _ := ctx.Value(peerCacheKey{}).(*peerCache)
	return c
}

func (c *peerCache) lookup(res *mtls, leaf *x509.Certificate, anchors *Anchors, now time.Time) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.res != res || c.leaf != leaf || c.anchors != anchors || c.id == "" ||
		now.Before(c.notBefore) || now.After(c.notAfter) {
		return "", false
	}
	return c.id, true
}

func (c *peerCache) store(res *mtls, leaf *x509.Certificate, anchors *Anchors, id string, chain []*x509.Certificate) {
	if c == nil {
		return
	}
	nb, na := window(chain)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res, c.leaf, c.anchors, c.id, c.notBefore, c.notAfter = res, leaf, anchors, id, nb, na
}
