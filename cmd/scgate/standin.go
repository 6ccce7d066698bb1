package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/proxy"
)

func newStandinCmd() *cobra.Command {
	var listen string
	var public bool
	var keys []string
	cmd := &cobra.Command{
		Use:   "standin --listen ADDR --key KEY...",
		Short: "Run the stand-in broadcaster alone, for integration tests",
		Long: `Run the stand-in broadcaster alone: it follows the broadcaster API and accepts
only the keys given with --key, for your own integration tests.`,
		Example: `  scgate standin --listen 127.0.0.1:8081 --key TestKey1.FAKEfakeFAKEfake --key TestKey2.FAKEfakeFAKEfake`,
		Args:    noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return cmdStandin(cmd.Context(), listen, public, keys, cmd.OutOrStdout())
		}),
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to listen on")
	cmd.Flags().BoolVar(&public, "playlists-get-public", false, "serve GET /api/v2/playlists/ without a key (older docs revision)")
	cmd.Flags().StringArrayVar(&keys, "key", nil, "an accepted SC-API-KEY (repeat for several)")
	return cmd
}

// cmdStandin runs the stand-in broadcaster alone, for users' own tests.
func cmdStandin(ctx context.Context, listen string, public bool, keys []string, stdout io.Writer) error {
	if len(keys) == 0 {
		return usageError{"give at least one --key"}
	}
	if slices.ContainsFunc(keys, func(k string) bool { return strings.TrimSpace(k) == "" }) {
		return usageError{"--key: a key must not be empty"}
	}
	si, err := standin.New(standin.Options{Keys: keys, PlaylistsGETPublic: public})
	if err != nil {
		return err
	}
	srv, err := proxy.Listen(si, proxy.ServerOptions{Name: "standin", Addr: listen})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stand-in broadcaster on http://%s/api/v2/ (%d keys accepted; Ctrl-C stops)\n", srv.Addr(), len(keys))
	return proxy.Run(ctx, proxy.LifecycleOptions{Gateways: []*proxy.Server{srv}, ShutdownTimeout: 5 * time.Second})
}

var _ http.Handler = (*standin.Server)(nil)
