// Command scgate is the authenticating gateway in front of the Streaming.Center
// broadcaster API. See README.md for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
)

// Exit codes (docs/design.md, CLI).
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `scgate: the authenticating gateway in front of the Streaming.Center API

Usage:
  scgate run --config FILE [--cpuprofile FILE]
                                  run the gateway (also: scgate --config FILE; SCGATE_CONFIG)
  scgate check --config FILE [--fail-on-expiry DURATION]
                                  validate config and vault; list callers and their keys
  scgate keys --config FILE [--json]
                                  list every key version: prefix, bounds, state, callers
  scgate keys verify --config FILE [--path P] [--json]
                                  ask the broadcaster whether it accepts each key version
  scgate explain --config FILE --caller ID --method M --path P [--json]
                                  which key, limits and route rule a request would get,
                                  without calling the broadcaster (exit 1 if refused)
  scgate vault encrypt --recipient AGE1... --in FILE --out FILE [--armor]
  scgate vault decrypt --identity FILE --in FILE --out FILE
                                  encrypt or decrypt a vault with age
  scgate demo [--selftest]        stand-in broadcaster + gateway on loopback, with demo keys
  scgate standin --listen ADDR --key KEY...
                                  the stand-in broadcaster alone, for integration tests
  scgate version                  version, commit, Go version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a command line that cannot be understood: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "scgate: %s\n\n%s", ue.msg, usage)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "scgate: %v\n", err)
		return exitInvalid
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		if os.Getenv("SCGATE_CONFIG") != "" {
			return cmdRun(ctx, nil, stderr)
		}
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, stdout, stderr)
	case "explain":
		return cmdExplain(rest, stdout, stderr)
	case "vault":
		return cmdVault(rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "standin":
		return cmdStandin(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	if len(cmd) > 1 && cmd[0] == '-' {
		return cmdRun(ctx, args, stderr) // scgate --config FILE
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// newFlags makes a subcommand's flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("scgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// parseConfigFlags adds --config to fs (whose other flags are already
// defined), parses args and loads the config.
func parseConfigFlags(fs *flag.FlagSet, args []string) (*config.Config, error) {
	path := fs.String("config", os.Getenv("SCGATE_CONFIG"), "config file (default $SCGATE_CONFIG)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if *path == "" {
		return nil, usageError{"--config FILE is required"}
	}
	return config.Load(*path)
}

// versionString reports the version stamped with -ldflags, else the module
// version the go command recorded (go install ...@v1.2.3), and the VCS
// revision from the build info ("+dirty" for a modified tree).
func versionString() string {
	v, commit := buildVersion()
	return fmt.Sprintf("scgate %s (commit %s, %s %s/%s)", v, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildVersion is the version (-ldflags, else the module's) and the VCS
// commit ("+dirty" when the tree had changes, "unknown" when not known) of
// this binary: what `scgate version` prints and scgate_build_info carries.
func buildVersion() (v, commit string) {
	v, commit = version, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit != "unknown" {
			commit += "+dirty"
		}
	}
	return v, commit
}
