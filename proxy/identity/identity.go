package identity

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrNoIdentity means a resolver cannot tell who the caller is, so the next
// resolver in a Chain should try. It is not a refusal; at the end of a chain
// it means no identity could be established.
var ErrNoIdentity = errors.New("identity: no identity established")

// Resolver names the caller of a request.
type Resolver interface {
	// Resolve returns the caller's identity. It returns ErrNoIdentity when
	// it cannot tell, and any other error to refuse the request; the error
	// text may be logged and never contains a credential. Resolve must be
	// safe for concurrent use and must not read the request body.
	Resolve(r *http.Request) (string, error)
}

// Chain tries resolvers in order. The first identity found wins; an error
// other than ErrNoIdentity refuses the request at once, without asking the
// resolvers after it; when every resolver returns ErrNoIdentity (or the chain
// is empty) so does the chain. A Chain is itself a Resolver, so chains nest.
type Chain []Resolver

// errEmptyIdentity fails closed on a resolver that breaks its contract by
// returning neither an identity nor an error.
var errEmptyIdentity = errors.New("identity: a resolver returned an empty identity")

// Resolve implements Resolver.
func (c Chain) Resolve(r *http.Request) (string, error) {
	for i, res := range c {
		if res == nil {
			return "", fmt.Errorf("identity: chain entry %d is nil", i+1)
		}
		id, err := res.Resolve(r)
		switch {
		case errors.Is(err, ErrNoIdentity):
			continue
		case err != nil:
			return "", err
		case id == "":
			return "", errEmptyIdentity
		}
		return id, nil
	}
	return "", ErrNoIdentity
}

// static names every request the same caller.
type static string

// Static returns a Resolver for a listener whose every caller is id: a
// sidecar reached only over loopback, or a socket only one workload can
// reach. The id must be non-empty, without surrounding spaces or control
// characters.
func Static(id string) (Resolver, error) {
	if err := checkIdentity(id); err != nil {
		return nil, fmt.Errorf("identity: static identity %q: %w", id, err)
	}
	return static(id), nil
}

// Resolve implements Resolver.
func (s static) Resolve(*http.Request) (string, error) { return string(s), nil }

// checkIdentity rejects identity strings that could never match a vault
// entry as intended or would corrupt a log line: empty, padded with spaces,
// not UTF-8, or holding control characters.
func checkIdentity(id string) error {
	switch {
	case id == "":
		return errors.New("identity is empty")
	case strings.TrimSpace(id) != id:
		return errors.New("identity has leading or trailing spaces")
	case !utf8.ValidString(id):
		return errors.New("identity is not valid UTF-8")
	case strings.ContainsFunc(id, unicode.IsControl):
		return errors.New("identity contains control characters")
	}
	return nil
}
