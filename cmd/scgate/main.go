// Command scgate is the authenticating gateway in front of the Streaming.Center
// broadcaster API. See README.md for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/agnivade/levenshtein"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
)

// Exit codes (README.md, Commands).
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a command line that cannot be understood: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// commandError is a command that ran and failed (invalid config, a failed
// check): exit 1. Every error a command's RunE returns is one, unless it is
// a usageError; what cobra itself returns (an unknown command or flag, a
// bad flag value) is not, and so exits 2.
type commandError struct{ err error }

func (e commandError) Error() string { return e.err.Error() }
func (e commandError) Unwrap() error { return e.err }

// loggedError is a failure already written to the gateway's log (in its
// configured format): exit 1 without printing it again.
type loggedError struct{ err error }

func (e loggedError) Error() string { return e.err.Error() }
func (e loggedError) Unwrap() error { return e.err }

// runMain runs the command line args and returns the exit code. Every error
// is printed once, to stderr.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var le loggedError
	var ue usageError
	var ce commandError
	switch {
	case errors.As(err, &le):
		return exitInvalid
	case errors.As(err, &ue) || !errors.As(err, &ce):
		fmt.Fprintf(stderr, "scgate: %s\nRun '%s --help' for usage.\n", strings.TrimRight(err.Error(), "\n"), cmd.CommandPath())
		return exitUsage
	default:
		fmt.Fprintf(stderr, "scgate: %v\n", err)
		return exitInvalid
	}
}

// runE adapts a command's function to cobra, marking its failures as
// command failures (exit 1) unless they are usage errors.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var ue usageError
		var le loggedError
		if err == nil || errors.As(err, &ue) || errors.As(err, &le) {
			return err
		}
		return commandError{err}
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var ro runOptions
	root := &cobra.Command{
		Use:   "scgate",
		Short: "The authenticating gateway in front of the Streaming.Center API",
		Long: `scgate is the authenticating gateway in front of the Streaming.Center broadcaster API.
Callers send requests without credentials; scgate identifies them, attaches the
caller's key from the vault as SC-API-KEY, enforces route policy and rate limits,
and forwards to the broadcaster.

"scgate --config FILE" (or SCGATE_CONFIG set and no command) runs the gateway.
Exit codes: 0 success, 1 invalid input or a failed check, 2 usage error.`,
		Example: `  scgate check --config /etc/scgate/config.toml
  scgate --config /etc/scgate/config.toml
  scgate demo`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if ro.config == "" {
				return usageError{"no command given (or --config FILE to run the gateway)"}
			}
			return cmdRun(cmd.Context(), ro, cmd.ErrOrStderr())
		}),
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.CompletionOptions.HiddenDefaultCmd = false
	addRunFlags(root, &ro)
	root.AddCommand(
		newRunCmd(), newCheckCmd(), newKeysCmd(), newExplainCmd(), newVaultCmd(),
		newDemoCmd(), newStandinCmd(), newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version",
		Example: "  scgate version",
		Args:    noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		}),
	}
}

// addConfigFlag adds --config, whose default is $SCGATE_CONFIG.
func addConfigFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "config", os.Getenv("SCGATE_CONFIG"), "the config file (default $SCGATE_CONFIG)")
	_ = cmd.MarkFlagFilename("config", "toml")
}

// loadConfig loads the --config file, which is required.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, usageError{"--config FILE is required (or set SCGATE_CONFIG)"}
	}
	return config.Load(path)
}

// noArgs refuses positional arguments, suggesting a subcommand for a
// misspelt one (cobra's suggestions), as cobra does for the root.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default for the root
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return usageError{msg}
	}
	return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
}

// flagError makes a flag that cannot be parsed a usage error, with "did
// you mean" for a misspelt flag name.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	const prefix = "unknown flag: --"
	if name, ok := strings.CutPrefix(msg, prefix); ok {
		if s := suggestFlag(cmd, name); s != "" {
			msg += fmt.Sprintf("\n\nDid you mean this?\n\t--%s", s)
		}
	}
	return usageError{msg}
}

// suggestFlag is the flag of cmd closest to name (within two edits, or a
// prefix of it), or "".
func suggestFlag(cmd *cobra.Command, name string) string {
	best, bestD := "", 3
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := levenshtein.ComputeDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && d > 1 {
			d = 1
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
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
