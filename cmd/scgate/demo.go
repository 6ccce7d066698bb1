package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/proxy"
)

// The demo's keys are fake and documented as such (README.md): they only
// open the in-process stand-in broadcaster.
const (
	demoKeyAdmin   = "DemoAdm1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	demoKeyRotated = "DemoAdm2.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	demoKeyExpired = "DemoArc1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	demoKeySouth   = "DemoSth1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
)

// Demo callers are told apart by loopback source address (the cidr resolver):
// Linux routes all of 127.0.0.0/8 to lo, so curl --interface 127.0.0.N works.
const (
	demoAddrSync     = "127.0.0.1" // playlist-sync, which has a key
	demoAddrReporter = "127.0.0.2" // reporting, which has no key in the vault
	demoAddrStranger = "127.0.0.3" // nobody: no identity
	demoAddrArchiver = "127.0.0.4" // archiver, whose key has only an expired version
	demoAddrStats    = "127.0.0.5" // stats, read-only by route policy and rate-limited hard
	demoAddrCity     = "127.0.0.6" // city-sync, scoped to station 3 of the panel's stations
	demoAddrNetwork  = "127.0.0.7" // network, with a key on each of the two panels
)

var demoVault = template.Must(template.New("vault").Parse(`# scgate demo vault: FAKE keys, accepted only by the stand-in broadcaster.
# Edit it while the demo runs: scgate applies the change within a second.
[callers]
"playlist-sync" = "playlist-admin"
"archiver" = "archive"
"stats" = "playlist-admin"
# network holds a key on each panel: its requests name the panel,
# /panels/north/api/v2/... or /panels/south/api/v2/...
"network" = { north = "playlist-admin", south = "south-admin" }
"city-sync" = "playlist-admin"

# Each key belongs to one panel and is only ever sent there.
[[keys.playlist-admin]]
upstream = "north"
secret = "{{.Admin}}"
{{if .Rotated}}
# A rotation: the newest not_before among the valid versions is the active one.
[[keys.playlist-admin]]
secret = "{{.Rotated}}"
not_before = {{.RotatedFrom}}
{{else}}
# To rotate the key live, remove the "# " before the next two lines and save:
# the newer version (the stand-in accepts it too) becomes the active one.
# [[keys.playlist-admin]]
# secret = "{{.Next}}"
{{end}}
[[keys.archive]]
upstream = "north"
secret = "{{.Expired}}"
expires = 2020-01-01T00:00:00Z

[[keys.south-admin]]
upstream = "south"
secret = "{{.South}}"
`))

var demoConfig = template.Must(template.New("config").Parse(`# scgate demo config (written by "scgate demo").
[server]
listen = "{{.Listen}}"
tls = "off"
shutdown_delay = "0s"
shutdown_timeout = "5s"

[admin]
listen = "{{.Admin}}"

# Two panels, each a stand-in broadcaster with its own keys.
[upstreams.north]
url = "{{.North}}"
response_header_timeout = "10s"

[upstreams.south]
url = "{{.South}}"
response_header_timeout = "10s"

[vault]
file = "keys.toml"
poll_interval = "1s"

[identity]
order = ["cidr"]
[identity.cidr]
"127.0.0.1/32" = "playlist-sync"
"127.0.0.2/32" = "reporting"
"127.0.0.4/32" = "archiver"
"127.0.0.5/32" = "stats"
"127.0.0.6/32" = "city-sync"
"127.0.0.7/32" = "network"

[limits]
rate = 50.0
burst = 100

# stats may send 2 requests at once, then one every 10 seconds.
[limits.callers."stats"]
rate = 0.1
burst = 2

# stats may only read; playlist-sync has no rule set, so it may call everything.
# city-sync may read and create playlists, on station 3 only (the stand-in
# hosts stations 1 to 4, all opened by the same key).
[policy.sets]
readonly = ["GET /api/v2/**"]
city = ["GET /api/v2/**", "POST /api/v2/playlists/"]
[policy.stations]
city = [3]
[policy.callers]
"stats" = "readonly"
"city-sync" = "city"

# The channel list, polled by many services, is answered from the cache for
# 5 seconds: one request to the broadcaster per 5 s per key.
[cache.routes]
"GET /api/v2/channels/" = "5s"

[log]
format = "console"
level = "{{.Level}}"
`))

// demoVaultData fills the demo vault. Rotated (with RotatedFrom) lists a
// second version; Next, when Rotated is empty, is the one the comment tells
// a person trying the demo to add.
type demoVaultData struct{ Admin, Rotated, RotatedFrom, Expired, Next, South string }

func writeDemoVault(path string, d demoVaultData) error {
	return writeTemplate(path, demoVault, d)
}

func newDemoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--selftest] [--listen ADDR] [--admin ADDR]",
		Short: "Run a stand-in broadcaster and a gateway on loopback, with fake demo keys",
		Long: `Run a stand-in broadcaster and a gateway in front of it on loopback, with
fake demo keys, and print what to try. With --selftest, run a scripted tour
(a read, a create, callers with no key, an unknown and an expired one, a live
key rotation, a forbidden route, a rate-limited caller, a caller scoped to
one of two stations) and exit 0 only if every step behaved.`,
		Example: `  scgate demo
  scgate demo --selftest`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return cmdDemo(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
	cmd.Flags().BoolVar(&o.selftest, "selftest", false, "run the scripted tour and exit 0 only if every step behaved")
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8080", "gateway address (the selftest uses a free port)")
	cmd.Flags().StringVar(&o.admin, "admin", "127.0.0.1:9090", "metrics and probes address (the selftest uses a free port)")
	return cmd
}

// demoOptions are the flags of `scgate demo`.
type demoOptions struct {
	selftest      bool
	listen, admin string
}

// cmdDemo runs the stand-in broadcaster and a gateway in front of it.
func cmdDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) error {
	if o.selftest {
		o.listen, o.admin = "127.0.0.1:0", "127.0.0.1:0"
	}
	dir, err := os.MkdirTemp("", "scgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	keys := []string{demoKeyAdmin}
	if !o.selftest {
		// The vault's comment offers this version for a live rotation; the
		// tour registers it itself, at the step that rotates.
		keys = append(keys, demoKeyRotated)
	}
	// Two panels, each its own stand-in with its own keys.
	si, err := standin.New(standin.Options{Keys: keys, MaxRecorded: 1000})
	if err != nil {
		return err
	}
	south, err := standin.New(standin.Options{Keys: []string{demoKeySouth}, MaxRecorded: 1000})
	if err != nil {
		return err
	}
	var upstreams []*proxy.Server
	for _, h := range []http.Handler{si, south} {
		srv, err := proxy.Listen(h, proxy.ServerOptions{Name: "standin", Addr: "127.0.0.1:0"})
		if err != nil {
			for _, s := range upstreams {
				_ = s.Close()
			}
			return err
		}
		upstreams = append(upstreams, srv)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	upDone := make(chan error, 1)
	go func() {
		upDone <- proxy.Run(ctx, proxy.LifecycleOptions{Gateways: upstreams, ShutdownTimeout: 5 * time.Second})
	}()
	defer func() { cancel(); <-upDone }()

	vaultPath := filepath.Join(dir, "keys.toml")
	if err := writeDemoVault(vaultPath, demoVaultData{Admin: demoKeyAdmin, Expired: demoKeyExpired, Next: demoKeyRotated, South: demoKeySouth}); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "config.toml")
	level := "info"
	if o.selftest {
		level = "warn" // the tour prints its own lines
	}
	if err := writeTemplate(cfgPath, demoConfig, map[string]string{
		"Listen": o.listen, "Admin": o.admin, "Level": level,
		"North": "http://" + upstreams[0].Addr().String(), "South": "http://" + upstreams[1].Addr().String(),
	}); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	// Unbuffered: someone trying the demo wants each access line at once.
	logger, _, err := gateway.NewLogger(cfg.Log, stderr, 0)
	if err != nil {
		return err
	}
	v, commit := buildVersion()
	g, err := gateway.Build(cfg, gateway.Options{Logger: logger, Version: v, Revision: commit})
	if err != nil {
		return fmt.Errorf("%w (is another demo running? use --listen and --admin to pick other ports)", err)
	}
	gwDone := make(chan error, 1)
	go func() { gwDone <- g.Run(ctx, nil) }()

	base := "http://" + g.Addr().String()
	if o.selftest {
		err := runSelftest(ctx, stdout, tour{base: base, standin: si, south: south, gw: g, vaultPath: vaultPath})
		cancel()
		return errors.Join(err, <-gwDone)
	}
	printDemoHelp(stdout, base, "http://"+g.AdminAddr().String(), vaultPath)
	err = <-gwDone
	logger.Info("demo stopped", zap.Error(err))
	return err
}

// writeTemplate replaces path atomically (write aside, then rename), as ops
// tools and Kubernetes do, so the vault watcher never reads half a file.
func writeTemplate(path string, t *template.Template, data any) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := t.Execute(f, data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printDemoHelp(w io.Writer, base, admin, vault string) {
	fmt.Fprintf(w, `
scgate demo: a gateway on %[1]s in front of two stand-in broadcaster
panels, north and south. Callers send no key; scgate attaches the caller's
SC-API-KEY for the panel (fake demo keys).

Try:
  curl -s '%[1]s/api/v2/playlists/?server=1'
  curl -s -X POST -H 'Content-Type: application/json' -d '{"name":"Morning","is_random":true,"server":1}' %[1]s/api/v2/playlists/
  curl -s '%[1]s/api/v2/history/?limit=2&server=1'     # "next" points back at scgate
  curl -si '%[1]s/api/v2/channels/?server=1' | grep -i cache-status   # again: a hit
  curl -si --interface %[2]s %[1]s/api/v2/history/     # a caller with no identity: 401
  curl -si --interface %[5]s -X POST %[1]s/api/v2/playlists/   # stats may only read: 403
  for i in 1 2 3; do curl -si --interface %[5]s %[1]s/api/v2/history/ | head -1; done   # 3rd: 429

Two stations, one key: city-sync (from %[6]s) is scoped to station 3.
  curl -s --interface %[6]s '%[1]s/api/v2/history/?limit=1&server=3'   # station 3: answered
  curl -s --interface %[6]s '%[1]s/api/v2/history/?limit=1&server=4'   # station 4: 403 station_forbidden
  curl -s --interface %[6]s -X POST -H 'Content-Type: application/json' -d '{"name":"City","server":3}' %[1]s/api/v2/playlists/
  curl -s --interface %[6]s -X POST -H 'Content-Type: application/json' -d '{"server":3,"server":4}' %[1]s/api/v2/playlists/   # 400
  curl -s --interface %[6]s %[1]s/api/v2/playlists/6/   # station 4's playlist by id: 403
  curl -s %[3]s/metrics | grep ^scgate_

Two panels: network (--interface %[7]s) holds a key on each; it names the panel
  curl -s --interface %[7]s '%[1]s/panels/north/api/v2/playlists/?server=1'
  curl -s --interface %[7]s '%[1]s/panels/south/api/v2/history/?limit=2&server=1'   # "next" keeps /panels/south
  curl -si --interface %[7]s %[1]s/api/v2/history/            # names no panel: 404 unknown_panel
  curl -si %[1]s/panels/south/api/v2/history/                 # playlist-sync has no south key: 403 panel_forbidden
  curl -s %[3]s/metrics | grep 'scgate_upstream_duration_seconds_count'   # by panel

Edit the vault while it runs (applied within a second): %[4]s
  To rotate the key, uncomment the newer version it offers, then watch
  curl -s %[3]s/metrics | grep scgate_key_active
Ctrl-C stops.
`, base, demoAddrStranger, admin, vault, demoAddrStats, demoAddrCity, demoAddrNetwork)
}
