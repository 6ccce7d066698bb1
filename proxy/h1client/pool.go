package h1client

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"
)

// pool holds the idle connections to one host, most recently used last.
type pool struct {
	cl   *Client
	addr string      // host:port
	tls  *tls.Config // nil for plain http

	mu   sync.Mutex
	idle []*conn
}

// get returns an idle connection that is still open, or a new one; reused
// says which.
func (p *pool) get(ctx context.Context) (c *conn, reused bool, err error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		c.timer.Stop()
		if time.Since(c.idleAt) < p.cl.opts.IdleConnTimeout && quiet(c.Conn) {
			return c, true, nil
		}
		_ = c.Close()
	}
	c, err = p.dial(ctx)
	return c, false, err
}

func (p *pool) dial(ctx context.Context) (*conn, error) {
	raw, err := p.cl.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err // a *net.OpError with Op "dial", as net/http returns it
	}
	c := &conn{Conn: raw, p: p}
	if p.tls != nil {
		tc := tls.Client(raw, p.tls)
		hctx, cancel := context.WithTimeout(ctx, p.cl.opts.TLSHandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("h1client: TLS handshake with %s: %w", p.addr, err)
		}
		c.Conn = tc
	}
	c.br = bufio.NewReaderSize(c.Conn, bufferSize)
	c.bw = bufio.NewWriterSize(c.Conn, bufferSize)
	return c, nil
}

// put returns c to the pool, or closes it when the pool is full.
func (p *pool) put(c *conn) {
	p.mu.Lock()
	if len(p.idle) >= p.cl.opts.MaxIdlePerHost {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	c.idleAt = time.Now()
	if c.timer == nil {
		c.timer = time.AfterFunc(p.cl.opts.IdleConnTimeout, func() { p.expire(c) })
	} else {
		c.timer.Reset(p.cl.opts.IdleConnTimeout)
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// expire closes c if it is still idle.
func (p *pool) expire(c *conn) {
	p.mu.Lock()
	for i, ic := range p.idle {
		if ic == c {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.mu.Unlock()
			_ = c.Close()
			return
		}
	}
	p.mu.Unlock()
}

// discardIdle closes every idle connection.
func (p *pool) discardIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.timer.Stop()
		_ = c.Close()
	}
}
