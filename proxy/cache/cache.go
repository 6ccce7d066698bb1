package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/metrics"
)

// Defaults for the zero values of Options.
const (
	// DefaultMaxBytes bounds the memory store.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxEntryBytes is the largest body stored; larger answers
	// stream through and are not stored.
	DefaultMaxEntryBytes = 1 << 20
	// DefaultFetchTimeout bounds a fetch that no single caller can cancel
	// (its waiters share it).
	DefaultFetchTimeout = 60 * time.Second
)

// statusName is this cache's name in Cache-Status.
const statusName = "scgate"

// Options configures a Cache. Rules is required; without rules nothing is
// cached.
type Options struct {
	// Rules say which GET routes are cached and for how long; the first
	// rule that matches a path applies.
	Rules []Rule
	// Store keeps the entries; nil means a memory store of MaxBytes, which
	// Close closes. A given Store is closed by its owner.
	Store Store
	// MaxBytes bounds the memory store (default DefaultMaxBytes).
	MaxBytes int64
	// MaxEntryBytes is the largest body stored (default
	// DefaultMaxEntryBytes); larger answers stream through.
	MaxEntryBytes int64
	// StaleWhileRevalidate serves an answer up to this long past its
	// freshness while one request in the background fetches a fresh one
	// (0: never).
	StaleWhileRevalidate time.Duration
	// StaleIfError serves an answer up to this long past its freshness when
	// the broadcaster cannot be reached or answers 500, 502, 503 or 504
	// (0: never).
	StaleIfError time.Duration
	// FetchTimeout bounds a shared fetch (default DefaultFetchTimeout).
	FetchTimeout time.Duration
	// Metrics records the scgate_cache_* series; nil records nothing.
	Metrics *metrics.Metrics
	// Logger reports store failures; nil discards them.
	Logger *zap.Logger
	// Now is the clock for ages; nil means time.Now.
	Now func() time.Time
}

// Cache is the response cache. Its methods are safe for concurrent use.
type Cache struct {
	rules    []Rule
	store    Store
	ownStore bool
	maxEntry int64
	swr, sie time.Duration
	timeout  time.Duration
	metrics  *metrics.Metrics
	log      *zap.Logger
	now      func() time.Time
	flight   flight
}

// New validates o and returns a cache.
func New(o Options) (*Cache, error) {
	for _, r := range o.Rules {
		if err := r.validate(); err != nil {
			return nil, err
		}
	}
	if o.MaxEntryBytes < 0 || o.MaxBytes < 0 || o.FetchTimeout < 0 || o.StaleIfError < 0 || o.StaleWhileRevalidate < 0 {
		return nil, errors.New("cache: sizes and durations must not be negative")
	}
	c := &Cache{
		rules: o.Rules, store: o.Store, maxEntry: o.MaxEntryBytes,
		swr: o.StaleWhileRevalidate, sie: o.StaleIfError, timeout: o.FetchTimeout,
		metrics: o.Metrics, log: o.Logger, now: o.Now,
	}
	if c.maxEntry == 0 {
		c.maxEntry = DefaultMaxEntryBytes
	}
	if c.timeout == 0 {
		c.timeout = DefaultFetchTimeout
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.store == nil {
		if o.MaxBytes == 0 {
			o.MaxBytes = DefaultMaxBytes
		}
		if c.maxEntry > o.MaxBytes {
			return nil, fmt.Errorf("cache: the largest entry (%d bytes) must fit in the store (%d bytes)", c.maxEntry, o.MaxBytes)
		}
		m, err := NewMemory(MemoryOptions{MaxBytes: o.MaxBytes, OnEvict: c.metrics.CacheEvicted, OnSize: c.metrics.CacheBytes})
		if err != nil {
			return nil, err
		}
		c.store, c.ownStore = m, true
	}
	return c, nil
}

// Close waits for fetches in flight and closes the memory store it made.
func (c *Cache) Close() error {
	c.flight.wg.Wait()
	if c.ownStore {
		return c.store.Close()
	}
	return nil
}

// Request is what the gateway decided about a request: the cache keys its
// entries by it.
type Request struct {
	// Panel names the broadcaster panel the request goes to.
	Panel string
	// Key is the caller's vault key name (never the secret).
	Key string
	// Path is the normalised path the route rules match.
	Path string
}

// Fetch sends the request upstream under ctx, which ends with the fetch
// rather than with any one caller's request.
type Fetch func(ctx context.Context) (*http.Response, error)

// RuleFor returns the rule that covers method on the normalised path, for
// explanations; false when the answer would not be cached.
func (c *Cache) RuleFor(method, path string) (Rule, bool) {
	return match(c.rules, method, path)
}

// RoundTrip answers req, decided as q, from the cache or through fetch.
// Requests no rule covers go to next unchanged. The answer's Request is
// req.
func (c *Cache) RoundTrip(req *http.Request, q Request, next http.RoundTripper, fetch Fetch) (*http.Response, error) {
	rule, ok := match(c.rules, req.Method, q.Path)
	if !ok {
		return next.RoundTrip(req)
	}
	if req.Header.Get("Authorization") != "" {
		// The broadcaster's own JWT sessions: answers to them are the
		// user's, not the key's.
		c.metrics.CacheLookup("bypass")
		return withStatus(next.RoundTrip(req))("fwd=bypass; detail=authorization")
	}
	ctx := req.Context()
	primary := primaryKey(q, rule.Shared, req)
	key, e := c.lookup(ctx, primary, req)
	now := c.now()
	var stale *Entry // an entry past its freshness, for stale-if-error
	if e != nil {
		age := e.age(now)
		switch {
		case age < e.TTL:
			c.metrics.CacheLookup("hit")
			return c.answer(req, e, age, "hit; ttl="+secs(e.TTL-age)), nil
		case age < e.TTL+c.swr:
			c.metrics.CacheLookup("stale")
			c.flight.join(key, c.fetcher(req, rule, primary, fetch), false)
			return c.answer(req, e, age, "hit; ttl="+secs(e.TTL-age)+"; detail=stale-while-revalidate"), nil
		case age < e.TTL+c.sie:
			stale = e
		}
	}
	call, leader := c.flight.join(key, c.fetcher(req, rule, primary, fetch), true)
	res, mine, err := c.flight.wait(ctx, call)
	if err != nil {
		return nil, err
	}
	if leader {
		c.metrics.CacheLookup("miss")
	} else {
		c.metrics.CacheLookup("coalesced")
	}
	if s := c.staleIfError(req, res, stale); s != nil {
		res.discard()
		return s, nil
	}
	if res.err != nil {
		return nil, res.err
	}
	if (res.exclusive && !mine) || (res.entry != nil && !sameVary(res.entry.Vary, res.req, req)) {
		// An answer for another request (its Vary values differ) or one
		// only one caller may have: this caller fetches its own.
		return withStatus(next.RoundTrip(req))("fwd=miss; detail=uncoalesced")
	}
	status := "fwd=miss"
	if !leader {
		status += "; collapsed"
	}
	if res.stored {
		status += "; stored"
	} else if res.notStored != nil {
		status += "; detail=" + res.notStored.Error()
	}
	if res.stream != nil {
		res.stream.Request = req
		res.stream.Header.Add("Cache-Status", statusName+"; "+status)
		return res.stream, nil
	}
	return c.answer(req, res.entry, -1, status), nil
}

// lookup finds the entry for req under primary, following a Vary marker.
// It returns the key a fetch for req coalesces on and the entry (nil on a
// miss or a store failure).
func (c *Cache) lookup(ctx context.Context, primary string, req *http.Request) (string, *Entry) {
	e := c.get(ctx, primary)
	if e == nil || !e.Marker {
		return primary, e
	}
	key := variantKey(primary, e.Vary, req)
	return key, c.get(ctx, key)
}

func (c *Cache) get(ctx context.Context, key string) *Entry {
	e, err := c.store.Get(ctx, key)
	if err != nil {
		c.metrics.CacheStoreError()
		c.log.Warn("cache store lookup failed; forwarding as a miss", zap.Error(err))
		return nil
	}
	return e
}

// staleIfError returns the stale answer for a failed fetch when
// stale-if-error allows it.
func (c *Cache) staleIfError(req *http.Request, res result, stale *Entry) *http.Response {
	if stale == nil {
		return nil
	}
	failed := res.err != nil
	if res.entry != nil {
		switch res.entry.Status {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			failed = true
		}
	}
	if !failed {
		return nil
	}
	c.metrics.CacheLookup("stale")
	age := stale.age(c.now())
	return c.answer(req, stale, age, "hit; ttl="+secs(stale.TTL-age)+"; detail=stale-if-error")
}

// fetcher returns the fetch of req's answer that a flight runs: it buffers
// the answer up to the entry limit, stores it when RFC 9111 allows, and
// hands it to the waiters.
func (c *Cache) fetcher(req *http.Request, rule Rule, primary string, fetch Fetch) func() result {
	return func() result {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), c.timeout)
		resp, err := fetch(ctx)
		if err != nil {
			cancel()
			return result{err: err, req: req}
		}
		ttl, why := lifetime(resp, rule)
		// Only a stored answer is shared across keys; one with a cookie is
		// never shared at all.
		exclusive := len(resp.Header.Values("Set-Cookie")) > 0 || (rule.Shared && why != nil)
		if resp.ContentLength > c.maxEntry {
			resp.Body = cancelOnClose{resp.Body, cancel}
			return result{stream: resp, exclusive: true, notStored: notStoredTooLarge, req: req}
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxEntry+1))
		if err != nil {
			_ = resp.Body.Close()
			cancel()
			return result{err: err, req: req}
		}
		if int64(len(body)) > c.maxEntry {
			resp.Body = cancelOnClose{readCloser{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}, cancel}
			return result{stream: resp, exclusive: true, notStored: notStoredTooLarge, req: req}
		}
		_ = resp.Body.Close()
		cancel()
		vary := varyNames(resp.Header)
		slices.Sort(vary)
		vary = slices.Compact(vary)
		e := &Entry{
			Status: resp.StatusCode, Header: resp.Header, Body: body,
			Stored: c.now(), Age: upstreamAge(resp.Header), TTL: ttl, Vary: vary,
		}
		res := result{entry: e, exclusive: exclusive, notStored: why, req: req}
		if why == nil {
			res.stored = c.put(primary, e, req)
		}
		return res
	}
}

// put stores e for req under primary (with a Vary marker when e varies),
// for its freshness and the longest stale window.
func (c *Cache) put(primary string, e *Entry, req *http.Request) bool {
	keep := e.TTL + max(c.swr, c.sie) - e.Age
	if keep <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	key := primary
	if len(e.Vary) > 0 {
		marker := &Entry{Marker: true, Vary: e.Vary, Stored: e.Stored, TTL: e.TTL}
		if err := c.store.Set(ctx, primary, marker, keep); err != nil {
			c.setFailed(err)
			return false
		}
		key = variantKey(primary, e.Vary, req)
	}
	if err := c.store.Set(ctx, key, e, keep); err != nil {
		c.setFailed(err)
		return false
	}
	return true
}

func (c *Cache) setFailed(err error) {
	c.metrics.CacheStoreError()
	c.log.Warn("cache store write failed; the answer is served but not stored", zap.Error(err))
}

// answer builds a response from e. With age >= 0 it is served from the
// store and carries Age.
func (c *Cache) answer(req *http.Request, e *Entry, age time.Duration, status string) *http.Response {
	h := e.Header.Clone()
	if h == nil {
		h = make(http.Header)
	}
	if age >= 0 {
		h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	}
	h.Add("Cache-Status", statusName+"; "+status)
	return &http.Response{
		Status:        strconv.Itoa(e.Status) + " " + http.StatusText(e.Status),
		StatusCode:    e.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(e.Body)),
		ContentLength: int64(len(e.Body)),
		Request:       req,
	}
}

// withStatus adds a Cache-Status field to an answer that passed by the
// cache.
func withStatus(resp *http.Response, err error) func(string) (*http.Response, error) {
	return func(status string) (*http.Response, error) {
		if err == nil {
			resp.Header.Add("Cache-Status", statusName+"; "+status)
		}
		return resp, err
	}
}

// secs writes a duration as whole seconds, rounded towards zero.
func secs(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

type readCloser struct {
	io.Reader
	io.Closer
}

// cancelOnClose ends a streamed fetch's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// Outcome reads this cache's Cache-Status entry of an answer as one word
// for logs: hit, stale, miss, coalesced, bypass; "" when it has none.
func Outcome(h http.Header) string {
	vs := h.Values("Cache-Status")
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	rest, ok := strings.CutPrefix(v, statusName+"; ")
	if !ok {
		return ""
	}
	switch {
	case strings.Contains(rest, "detail=stale-"):
		return "stale"
	case strings.HasPrefix(rest, "hit"):
		return "hit"
	case strings.HasPrefix(rest, "fwd=bypass"):
		return "bypass"
	case strings.Contains(rest, "; collapsed"):
		return "coalesced"
	}
	return "miss"
}
