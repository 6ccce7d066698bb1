package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/proxy"
)

// keyList is a repeatable --key flag.
type keyList []string

func (k *keyList) String() string { return fmt.Sprintf("%d keys", len(*k)) }

func (k *keyList) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("a key must not be empty")
	}
	*k = append(*k, v)
	return nil
}

// cmdStandin runs the stand-in broadcaster alone, for users' own tests.
func cmdStandin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("standin", stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	public := fs.Bool("playlists-get-public", false, "serve GET /api/v2/playlists/ without a key (older docs revision)")
	var keys keyList
	fs.Var(&keys, "key", "an accepted SC-API-KEY (repeat for several)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(keys) == 0 {
		return usageError{"give at least one --key"}
	}
	si, err := standin.New(standin.Options{Keys: keys, PlaylistsGETPublic: *public})
	if err != nil {
		return err
	}
	srv, err := proxy.Listen(si, proxy.ServerOptions{Name: "standin", Addr: *listen})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stand-in broadcaster on http://%s/api/v2/ (%d keys accepted; Ctrl-C stops)\n", srv.Addr(), len(keys))
	return proxy.Run(ctx, proxy.LifecycleOptions{Gateways: []*proxy.Server{srv}, ShutdownTimeout: 5 * time.Second})
}

var _ http.Handler = (*standin.Server)(nil)
