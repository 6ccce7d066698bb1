package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// The stand-in broadcaster of the bench. It answers the one call the load
// sends as cheaply as Go's server allows, so that the upstream takes as little
// of the shared CPU as possible:
//
//	GET  /api/v2/playlists/?server=1  200, about 1 KB of JSON (three playlists)
//	GET  /api/v2/history/?limit=1&... 200, the track playing now (the poll scenario)
//	POST /api/v2/playlists/           201 (for the same-job checks)
//	GET  /__bench/stats               counters, without a key
//
// Every /api/ request must carry exactly one SC-API-KEY equal to the bench
// key, else 403: a proxy that adds its key beside a caller's copy fails the
// checks instead of passing them by luck.

// benchPlaylist has the fields of the broadcaster's playlist objects.
type benchPlaylist struct {
	ID                   int    `json:"id"`
	Name                 string `json:"name"`
	Duration             int    `json:"duration"`
	TracksNum            int    `json:"tracks_num"`
	PlaylistFilesPerPage int    `json:"playlist_files_per_page"`
	IsDefault            bool   `json:"is_default"`
	IsRandom             bool   `json:"is_random"`
	OnAir                bool   `json:"on_air"`
	DirectoryName        string `json:"directory_name"`
	CurrentTrackOrder    int    `json:"current_track_order"`
	Server               int    `json:"server"`
}

// playlistsBody is the answer to GET /api/v2/playlists/?server=1.
func playlistsBody() []byte {
	list := []benchPlaylist{
		{1, "Weekday mornings: news on the hour, traffic at :15 and :45, upbeat pop between", 10800000, 212, 1000, true, false, true, "/srv/media/1/mornings", 41, 1},
		{2, "Afternoon request show, listener picks, no repeats within four hours", 14400000, 388, 1000, false, true, false, "/srv/media/1/requests", 0, 1},
		{3, "Overnight automation: ambient and instrumental sets", 21600000, 97, 1000, false, true, false, "/srv/media/1/overnight-automation", 0, 1},
		{4, "Sunday archive replays", 7200000, 24, 1000, false, false, false, "/srv/media/1/sunday-archive", 0, 1},
	}
	b, err := json.Marshal(list)
	if err != nil {
		panic(err) // a fixed value of plain types: cannot fail
	}
	return b
}

// upstreamStats counts what the upstream saw, for the same-job checks and
// the keep-alive check.
type upstreamStats struct {
	Conns   int64 `json:"conns"`   // connections accepted
	OK      int64 `json:"ok"`      // GET 200
	Created int64 `json:"created"` // POST 201
	Denied  int64 `json:"denied"`  // 403: no key, a wrong key, or more than one
	History int64 `json:"history"` // GET /api/v2/history/ 200
	Other   int64 `json:"other"`   // anything else
}

type upstream struct {
	key                        string
	body                       []byte
	bodyLen, ctJSON, deniedLen []string
	conns, ok, created, denied atomic.Int64
	other, history             atomic.Int64
	historyBody                []byte
	deniedBody                 []byte
}

func newUpstream(key string) *upstream {
	u := &upstream{key: key, body: playlistsBody(), deniedBody: []byte(`{"detail":"Invalid or missing SC-API-KEY"}`)}
	u.bodyLen = []string{strconv.Itoa(len(u.body))}
	u.deniedLen = []string{strconv.Itoa(len(u.deniedBody))}
	u.ctJSON = []string{"application/json"}
	u.historyBody = []byte(`{"count":500,"next":"http://upstream.invalid/api/v2/history/?limit=1&offset=1&server=1","previous":null,` +
		`"results":[{"id":9001,"album":"Night Drive","author":"The Bench Ensemble","title":"Paced Requests","ts":1765100000000,"all_music_id":77,"dj_name":"automation","year":2026}]}`)
	return u
}

func (u *upstream) stats() upstreamStats {
	return upstreamStats{Conns: u.conns.Load(), OK: u.ok.Load(), Created: u.created.Load(), Denied: u.denied.Load(), Other: u.other.Load(), History: u.history.Load()}
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.URL.Path == "/__bench/stats" {
		h["Content-Type"] = u.ctJSON
		_ = json.NewEncoder(w).Encode(u.stats())
		return
	}
	if r.URL.Path == "/api/v2/history/" && r.Method == http.MethodGet {
		if v := r.Header["Sc-Api-Key"]; len(v) != 1 || v[0] != u.key {
			u.denied.Add(1)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		u.history.Add(1)
		h["Content-Type"] = u.ctJSON
		_, _ = w.Write(u.historyBody)
		return
	}
	if r.URL.Path != "/api/v2/playlists/" {
		u.other.Add(1)
		http.NotFound(w, r)
		return
	}
	// The server canonicalises header names, so every casing of SC-API-KEY
	// lands in this one entry.
	if v := r.Header["Sc-Api-Key"]; len(v) != 1 || v[0] != u.key {
		u.denied.Add(1)
		h["Content-Type"], h["Content-Length"] = u.ctJSON, u.deniedLen
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(u.deniedBody)
		return
	}
	switch r.Method {
	case http.MethodGet:
		u.ok.Add(1)
		h["Content-Type"], h["Content-Length"] = u.ctJSON, u.bodyLen
		_, _ = w.Write(u.body)
	case http.MethodPost:
		if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20)); err != nil {
			u.other.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		u.created.Add(1)
		h["Content-Type"] = u.ctJSON
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":5}`))
	default:
		u.other.Add(1)
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// server returns the upstream's http.Server, counting connections.
func (u *upstream) server() *http.Server {
	return &http.Server{
		Handler:           u,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute, // longer than every proxy's idle timeout towards it
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				u.conns.Add(1)
			}
		},
		// HTTP/1.1 only, also over TLS, as nginx and haproxy speak to it.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0),
	}
}

// runUpstream is `bench upstream`: the stand-in as its own process, so that
// its CPU is not counted as any proxy's.
func runUpstream(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench upstream", flag.ContinueOnError)
	addr := fs.String("listen", "", "loopback host:port")
	key := fs.String("key", "", "the one SC-API-KEY value accepted")
	certFile := fs.String("cert", "", "serve HTTPS with this certificate (and -keyfile)")
	keyFile := fs.String("keyfile", "", "private key of -cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopbackAddr(*addr); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if *key == "" {
		return errors.New("upstream: -key is required")
	}
	srv := newUpstream(*key).server()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	}
	return serveUntil(ctx, srv, ln)
}

// serveUntil serves on ln until ctx is done, then closes the server.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		_ = srv.Close()
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}
