package cache

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// Store keeps entries. Get returns (nil, nil) on a miss; an error means
// the store could not answer, and the gateway forwards as on a miss.
type Store interface {
	Get(ctx context.Context, key string) (*Entry, error)
	// Set keeps e under key for keep (then the store may drop it).
	Set(ctx context.Context, key string, e *Entry, keep time.Duration) error
	// Close releases the store's goroutines and connections.
	Close() error
}

// MemoryOptions configures the in-process store.
type MemoryOptions struct {
	// MaxBytes bounds the bytes of the entries held (bodies, headers and a
	// fixed overhead per entry); least valuable entries are evicted first.
	// Required.
	MaxBytes int64
	// OnEvict is called for every entry evicted for space (not for
	// expiry); nil ignores them.
	OnEvict func()
	// OnSize is called with the bytes held after each change; nil ignores it.
	OnSize func(bytes int64)
}

// Memory is an in-process store bounded in bytes, built on otter (W-TinyLFU
// eviction, per-entry expiry).
type Memory struct {
	c      *otter.Cache[string, memItem]
	onSize func(int64)
}

// NewMemory returns a memory store; Close stops its maintenance goroutine.
func NewMemory(o MemoryOptions) (*Memory, error) {
	if o.MaxBytes <= 0 {
		return nil, errors.New("cache: the memory store needs a positive byte bound")
	}
	m := &Memory{onSize: o.OnSize}
	c, err := otter.New(&otter.Options[string, memItem]{
		MaximumWeight: uint64(o.MaxBytes),
		Weigher: func(_ string, it memItem) uint32 {
			return uint32(min(it.e.size(), math.MaxUint32))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memItem]) time.Duration {
			return e.Value.keep
		}),
		OnDeletion: func(ev otter.DeletionEvent[string, memItem]) {
			if ev.Cause == otter.CauseOverflow && o.OnEvict != nil {
				o.OnEvict()
			}
			m.reportSize()
		},
	})
	if err != nil {
		return nil, err
	}
	m.c = c
	return m, nil
}

func (m *Memory) reportSize() {
	if m.onSize != nil && m.c != nil {
		m.onSize(int64(m.c.WeightedSize()))
	}
}

// memItem is an entry with how long the store keeps it.
type memItem struct {
	e    *Entry
	keep time.Duration
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	it, _ := m.c.GetIfPresent(key)
	return it.e, nil
}

// Set implements Store.
func (m *Memory) Set(_ context.Context, key string, e *Entry, keep time.Duration) error {
	m.c.Set(key, memItem{e: e, keep: keep})
	m.reportSize()
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.c.StopAllGoroutines()
	return nil
}
