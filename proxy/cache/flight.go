package cache

import (
	"context"
	"net/http"
	"sync"
)

// flight coalesces concurrent misses of one entry into one upstream
// request. It is singleflight with two differences the gateway needs: the
// fetch runs on its own (a waiter that gives up does not end it for the
// others), and an answer that only one caller may have (a body too large
// to buffer, a Set-Cookie) goes to exactly one waiter, or is closed when
// none is left.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
	wg    sync.WaitGroup // running fetches, for Close
}

type call struct {
	done     chan struct{}
	res      result
	waiters  int  // guarded by flight.mu
	finished bool // guarded by flight.mu
	claimed  bool // guarded by flight.mu: an exclusive result was taken
}

// result is what a fetch produced.
type result struct {
	entry  *Entry         // the answer, buffered (nil with stream or err)
	stream *http.Response // an answer too large to buffer: exclusive
	err    error
	// exclusive: only one waiter may have it; the others fetch their own.
	exclusive bool
	// stored: the entry went into the store; notStored says why not.
	stored    bool
	notStored error
	// req is the request the fetch sent, for comparing Vary values.
	req *http.Request
}

func (r result) discard() {
	if r.stream != nil {
		_ = r.stream.Body.Close()
	}
}

// join returns the call in flight for key, starting fn in its own goroutine
// when there is none (leader is then true). With wait, the caller counts as
// a waiter and must call wait.
func (f *flight) join(key string, fn func() result, wait bool) (c *call, leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c = f.calls[key]
	if c == nil {
		if f.calls == nil {
			f.calls = make(map[string]*call)
		}
		c, leader = &call{done: make(chan struct{})}, true
		f.calls[key] = c
		f.wg.Add(1)
		go f.run(key, c, fn)
	}
	if wait {
		c.waiters++
	}
	return c, leader
}

func (f *flight) run(key string, c *call, fn func() result) {
	defer f.wg.Done()
	r := fn()
	f.mu.Lock()
	if f.calls[key] == c {
		delete(f.calls, key)
	}
	c.res, c.finished = r, true
	if c.waiters == 0 {
		c.claimed = true
		r.discard()
	}
	f.mu.Unlock()
	close(c.done)
}

// wait waits for c's result or ctx's end. mine says whether this waiter
// took an exclusive result; a waiter that gets an exclusive result it did
// not take must fetch its own.
func (f *flight) wait(ctx context.Context, c *call) (r result, mine bool, err error) {
	select {
	case <-c.done:
		f.mu.Lock()
		defer f.mu.Unlock()
		c.waiters--
		if c.res.exclusive && !c.claimed {
			c.claimed, mine = true, true
		}
		return c.res, mine, nil
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		c.waiters--
		if c.finished && c.waiters == 0 && !c.claimed {
			c.claimed = true
			c.res.discard()
		}
		return result{}, false, ctx.Err()
	}
}
