package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// runBare is `bench bare`: the smallest honest Go proxy doing the same job,
// so that the table shows what scgate's features cost over bare Go. Stdlib
// ReverseProxy with Rewrite (which drops hop-by-hop headers before the key
// is set), a sized idle pool, a buffer pool.
func runBare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench bare", flag.ContinueOnError)
	listen, up, key := fs.String("listen", "", "host:port"), fs.String("upstream", "", "URL"), fs.String("key", "", "SC-API-KEY")
	cert, keyFile, ca := fs.String("cert", "", "TLS in"), fs.String("keyfile", "", "TLS in"), fs.String("ca", "", "upstream CA")
	admin := fs.String("admin", "", "host:port of a page with the Go heap in use (go_memstats_heap_inuse_bytes), for the memory samples")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	if *admin != "" {
		if err := checkLoopbackAddr(*admin); err != nil {
			return err
		}
		aln, err := net.Listen("tcp", *admin)
		if err != nil {
			return err
		}
		asrv := &http.Server{Handler: http.HandlerFunc(heapPage), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = asrv.Serve(aln) }()
		defer asrv.Close()
	}
	target, err := url.Parse(*up)
	if err != nil {
		return err
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		tlsConf.RootCAs = x509.NewCertPool()
		tlsConf.RootCAs.AppendCertsFromPEM(pem)
	}
	buffers := &bufPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Del("Sc-Api-Key") // the server canonicalised every casing to this
			pr.Out.Header["Sc-Api-Key"] = []string{*key}
		},
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 2 * time.Minute,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, TLSClientConfig: tlsConf},
		BufferPool: buffers,
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *keyFile)
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}})
	}
	return serveUntil(ctx, srv, ln)
}

// heapPage answers with the one line of a Prometheus page the memory
// samples read (the bare proxy has no metrics of its own).
func heapPage(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\n", m.HeapInuse)
}

type bufPool struct{ p sync.Pool }

func (b *bufPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufPool) Put(x []byte) { b.p.Put(&x) }
