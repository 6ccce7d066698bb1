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
	var keys, panels []string
	cmd := &cobra.Command{
		Use:   "standin --listen ADDR --key KEY... | --panel NAME=ADDR... --key NAME:KEY...",
		Short: "Run the stand-in broadcaster alone, for integration tests",
		Long: `Run the stand-in broadcaster alone: it follows the broadcaster API and accepts
only the keys given with --key, for your own integration tests. With --panel
(repeated), it serves several panels at once, each on its own address with its
own keys: every --key then names its panel, NAME:KEY.`,
		Example: `  scgate standin --listen 127.0.0.1:8081 --key TestKey1.FAKEfakeFAKEfake --key TestKey2.FAKEfakeFAKEfake
  scgate standin --panel north=127.0.0.1:8081 --panel south=127.0.0.1:8082 \
    --key north:NorthKe1.FAKEfakeFAKEfake --key south:SouthKe1.FAKEfakeFAKEfake`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			specs, err := standinPanels(listen, cmd.Flags().Changed("listen"), panels, keys)
			if err != nil {
				return err
			}
			return cmdStandin(cmd.Context(), specs, public, cmd.OutOrStdout())
		}),
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to listen on (one panel)")
	cmd.Flags().BoolVar(&public, "playlists-get-public", false, "serve GET /api/v2/playlists/ without a key (older docs revision)")
	cmd.Flags().StringArrayVar(&keys, "key", nil, "an accepted SC-API-KEY (repeat for several); with --panel, NAME:KEY")
	cmd.Flags().StringArrayVar(&panels, "panel", nil, "serve a panel NAME on ADDR, as NAME=ADDR (repeat for several panels)")
	return cmd
}

// standinPanel is one stand-in to serve: its name ("" alone), address and keys.
type standinPanel struct {
	name, addr string
	keys       []string
}

// standinPanels reads the flags: one stand-in on listen with every key, or
// one per --panel with the keys that name it.
func standinPanels(listen string, listenSet bool, panels, keys []string) ([]standinPanel, error) {
	if slices.ContainsFunc(keys, func(k string) bool { return strings.TrimSpace(k) == "" }) {
		return nil, usageError{"--key: a key must not be empty"}
	}
	if len(panels) == 0 {
		if len(keys) == 0 {
			return nil, usageError{"give at least one --key"}
		}
		return []standinPanel{{addr: listen, keys: keys}}, nil
	}
	if listenSet {
		return nil, usageError{"--listen and --panel exclude each other: give each panel's address as --panel NAME=ADDR"}
	}
	var specs []standinPanel
	for _, p := range panels {
		name, addr, ok := strings.Cut(p, "=")
		if !ok || addr == "" || proxy.ValidPanelName(name) != "" {
			return nil, usageError{fmt.Sprintf("--panel %q: write NAME=ADDR, NAME a panel name (lowercase letters, digits, inner hyphens)", p)}
		}
		if slices.ContainsFunc(specs, func(s standinPanel) bool { return s.name == name }) {
			return nil, usageError{fmt.Sprintf("--panel %q: panel %s is given twice", p, name)}
		}
		specs = append(specs, standinPanel{name: name, addr: addr})
	}
	for _, k := range keys {
		name, key, _ := strings.Cut(k, ":")
		i := slices.IndexFunc(specs, func(s standinPanel) bool { return s.name == name })
		if i < 0 || key == "" {
			return nil, usageError{fmt.Sprintf("--key: with --panel, write NAME:KEY with NAME one of the panels (a key starting %q names none)", name)}
		}
		specs[i].keys = append(specs[i].keys, key)
	}
	for _, s := range specs {
		if len(s.keys) == 0 {
			return nil, usageError{fmt.Sprintf("panel %s has no key: give --key %s:KEY", s.name, s.name)}
		}
	}
	return specs, nil
}

// cmdStandin runs the stand-in broadcaster (one per panel) alone, for users'
// own tests.
func cmdStandin(ctx context.Context, specs []standinPanel, public bool, stdout io.Writer) error {
	var servers []*proxy.Server
	closeAll := func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
	for _, sp := range specs {
		si, err := standin.New(standin.Options{Keys: sp.keys, PlaylistsGETPublic: public})
		if err != nil {
			closeAll()
			return err
		}
		srv, err := proxy.Listen(si, proxy.ServerOptions{Name: "standin", Addr: sp.addr})
		if err != nil {
			closeAll()
			return err
		}
		servers = append(servers, srv)
		what := "stand-in broadcaster"
		if sp.name != "" {
			what += " panel " + sp.name
		}
		fmt.Fprintf(stdout, "%s on http://%s/api/v2/ (%d keys accepted)\n", what, srv.Addr(), len(sp.keys))
	}
	fmt.Fprintln(stdout, "Ctrl-C stops.")
	return proxy.Run(ctx, proxy.LifecycleOptions{Gateways: servers, ShutdownTimeout: 5 * time.Second})
}

var _ http.Handler = (*standin.Server)(nil)
