package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Entry is one stored answer, or a Vary marker that says which request
// headers the answers under a key vary on.
type Entry struct {
	Status int
	Header http.Header
	Body   []byte
	// Stored is when the answer arrived; Age its age then (the
	// broadcaster's Age header); TTL its freshness lifetime.
	Stored time.Time
	Age    time.Duration
	TTL    time.Duration
	// Vary lists the request headers the answer varies on.
	Vary []string
	// Marker: this entry only records Vary for its key; the answers are
	// stored under variant keys.
	Marker bool
}

// age is the entry's current age (RFC 9111 §4.2.3, without the
// broadcaster's clock: the arrival time is scgate's).
func (e *Entry) age(now time.Time) time.Duration {
	return e.Age + max(now.Sub(e.Stored), 0)
}

// size approximates the memory an entry holds, for the byte bound.
func (e *Entry) size() int64 {
	n := int64(len(e.Body)) + 256
	for k, vs := range e.Header {
		n += int64(len(k)) + 32
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	for _, v := range e.Vary {
		n += int64(len(v)) + 16
	}
	return n
}

func (e *Entry) encode() ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(e); err != nil {
		return nil, fmt.Errorf("cache: encoding an entry: %w", err)
	}
	return b.Bytes(), nil
}

func decodeEntry(b []byte) (*Entry, error) {
	e := new(Entry)
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(e); err != nil {
		return nil, fmt.Errorf("cache: decoding an entry: %w", err)
	}
	return e, nil
}

// keyBuilder hashes the parts of a cache key, each with its length, so no
// two different keys share their bytes and no secret (a Vary on SC-API-KEY)
// is ever kept readable in a store.
type keyBuilder struct{ h []byte }

func (k *keyBuilder) add(s string) {
	k.h = binary.AppendUvarint(k.h, uint64(len(s)))
	k.h = append(k.h, s...)
}

func (k *keyBuilder) sum() string {
	s := sha256.Sum256(k.h)
	return hex.EncodeToString(s[:])
}

// primaryKey is the key of a request before Vary: panel, key name (or
// shared), method, path and query exactly as forwarded.
func primaryKey(q Request, shared bool, req *http.Request) string {
	var k keyBuilder
	k.add("scgate-cache-v1")
	k.add(q.Panel)
	if shared {
		k.add("shared")
		k.add("")
	} else {
		k.add("key")
		k.add(q.Key)
	}
	k.add(req.Method)
	k.add(req.URL.EscapedPath())
	k.add(req.URL.RawQuery)
	return k.sum()
}

// variantKey adds the values of the Vary headers of req to primary.
func variantKey(primary string, names []string, req *http.Request) string {
	var k keyBuilder
	k.add(primary)
	for _, n := range names {
		k.add(n)
		vs := req.Header.Values(n)
		k.h = binary.AppendUvarint(k.h, uint64(len(vs)))
		for _, v := range vs {
			k.add(v)
		}
	}
	return k.sum()
}

// sameVary reports whether a and b send the same values of the headers in
// names, so that an answer fetched for one may serve the other.
func sameVary(names []string, a, b *http.Request) bool {
	for _, n := range names {
		if !slices.Equal(a.Header.Values(n), b.Header.Values(n)) {
			return false
		}
	}
	return true
}
