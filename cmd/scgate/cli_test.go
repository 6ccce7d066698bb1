package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCLI is the command line as a new user meets it, through runMain (the
// whole cobra tree with captured output): the version flag, help with an
// example for every command, "did you mean" for misspelt commands and
// flags, each error printed once, exit codes 0/1/2 and shell completion.
func TestCLI(t *testing.T) {
	good := writeConfig(t, agreeBase)
	cases := []struct {
		name    string
		args    []string
		code    int
		out     []string // each must be in stdout
		errOut  []string // each must be in stderr
		errOnce string   // must be in stderr exactly once
	}{
		{name: "version flag", args: []string{"--version"}, code: exitOK, out: []string{"scgate ", "go1."}},
		{name: "version command", args: []string{"version"}, code: exitOK, out: []string{"scgate ", "go1."}},
		{name: "root help", args: []string{"--help"}, code: exitOK, out: []string{"Examples:", "scgate check --config", "completion", "Exit codes"}},
		{name: "help command", args: []string{"help", "check"}, code: exitOK, out: []string{"Examples:", "--fail-on-expiry 14d"}},
		{name: "vault help", args: []string{"vault", "--help"}, code: exitOK, out: []string{"Examples:", "encrypt", "decrypt"}},
		{name: "vault without subcommand", args: []string{"vault"}, code: exitUsage, errOnce: "needs a subcommand: encrypt or decrypt"},
		{name: "misspelt command", args: []string{"chek"}, code: exitUsage, errOnce: `unknown command "chek"`, errOut: []string{"Did you mean this?\n\tcheck"}},
		{name: "misspelt subcommand", args: []string{"keys", "verfy"}, code: exitUsage, errOnce: `unknown command "verfy" for "scgate keys"`, errOut: []string{"Did you mean this?\n\tverify"}},
		{name: "misspelt vault subcommand", args: []string{"vault", "encrpyt"}, code: exitUsage, errOut: []string{"Did you mean this?\n\tencrypt"}},
		{name: "misspelt flag", args: []string{"keys", "--jsn"}, code: exitUsage, errOnce: "unknown flag: --jsn", errOut: []string{"Did you mean this?\n\t--json"}},
		{name: "bad duration printed once", args: []string{"check", "--config", good, "--fail-on-expiry", "14x"}, code: exitUsage, errOnce: `"14x": write whole days (14d) or a Go duration (336h)`},
		{name: "days that overflow a duration", args: []string{"check", "--config", good, "--fail-on-expiry", "999999999d"}, code: exitUsage, errOnce: "write whole days (14d)"},
		{name: "days accepted", args: []string{"check", "--config", good, "--fail-on-expiry", "14d"}, code: exitOK, out: []string{"config ", ": ok"}},
		{name: "no command", args: nil, code: exitUsage, errOnce: "no command given"},
		{name: "missing --config", args: []string{"keys"}, code: exitUsage, errOnce: "--config FILE is required"},
		{name: "stray argument", args: []string{"check", "--config", good, "extra"}, code: exitUsage, errOnce: `unexpected argument "extra"`},
		{name: "failed check exits 1, printed once", args: []string{"check", "--config", good + ".missing"}, code: exitInvalid, errOnce: "config.toml.missing"},
		{name: "bash completion", args: []string{"completion", "bash"}, code: exitOK, out: []string{"bash completion", "__start_scgate"}},
		{name: "zsh completion", args: []string{"completion", "zsh"}, code: exitOK, out: []string{"#compdef scgate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SCGATE_CONFIG", "")
			code, out, errOut := run(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errOut)
			}
			for _, w := range c.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range c.errOut {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if c.errOnce != "" && strings.Count(errOut, c.errOnce) != 1 {
				t.Errorf("stderr has %q %d times, want once:\n%s", c.errOnce, strings.Count(errOut, c.errOnce), errOut)
			}
			if c.code == exitUsage && strings.Count(errOut, "Usage:") > 0 {
				t.Errorf("a usage error printed the whole usage:\n%s", errOut)
			}
		})
	}
}

// TestEveryCommandHasHelpWithAnExample walks the whole command tree.
func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	var out, errOut strings.Builder
	root := newRootCmd(&out, &errOut)
	var paths [][]string
	var walk func(prefix []string, cmds []*cobra.Command)
	walk = func(prefix []string, cmds []*cobra.Command) {
		for _, c := range cmds {
			p := append(append([]string(nil), prefix...), c.Name())
			paths = append(paths, p)
			walk(p, c.Commands())
		}
	}
	walk(nil, root.Commands())
	if len(paths) < 10 {
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, p := range paths {
		code, stdout, stderr := run(t, append(p, "--help")...)
		if code != exitOK || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "scgate "+strings.Join(p, " ")) {
			t.Errorf("scgate %s --help: exit %d, no example:\n%s%s", strings.Join(p, " "), code, stdout, stderr)
		}
	}
}

// The exit codes are the process's own, through the built binary.
func TestCLIExitCodesOfTheBinary(t *testing.T) {
	bin := buildScgate(t)
	good := writeConfig(t, agreeBase)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--version"}, exitOK},
		{[]string{"check", "--config", good}, exitOK},
		{[]string{"check", "--config", good + ".missing"}, exitInvalid},
		{[]string{"keys", "verfy"}, exitUsage},
		{[]string{"check", "--nope"}, exitUsage},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code {
			t.Errorf("scgate %v: exit %d, want %d\n%s", c.args, code, c.code, out)
		}
	}
}

// A fatal start-up error (a port in use) is written as a JSON log line like
// every other line of run's log, names the setting to change, and is not
// printed again as plain text.
func TestRunStartupErrorIsALogLineNamingTheSetting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := strings.Replace(agreeBase, `listen = "127.0.0.1:0"`, `listen = "`+taken.Addr().String()+`"`, 1)
	code, _, errOut := runCtx(context.Background(), t, "run", "--config", writeConfig(t, cfg))
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d:\n%s", code, exitInvalid, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a line that is not JSON among the log lines: %q\n%s", l, errOut)
		}
	}
	var last struct{ Level, Msg, Error string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Level != "error" || !strings.Contains(last.Error, "config.toml:2: server.listen") || !strings.Contains(last.Error, "address already in use") {
		t.Fatalf("last log line: %+v\n%s", last, errOut)
	}
}

func runCtx(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := runMain(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// `scgate --config FILE`, and `scgate` alone with SCGATE_CONFIG set, are
// `scgate run`: with a cancelled context the gateway builds, starts and
// stops at once, and says so in its log.
func TestRootRunsTheGateway(t *testing.T) {
	good := writeConfig(t, agreeBase)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name, env string
		args      []string
	}{
		{"--config", "", []string{"--config", good}},
		{"SCGATE_CONFIG", good, nil},
		{"run with SCGATE_CONFIG", good, []string{"run"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SCGATE_CONFIG", c.env)
			code, _, errOut := runCtx(ctx, t, c.args...)
			if code != exitOK || !strings.Contains(errOut, "scgate is ready") {
				t.Fatalf("exit %d:\n%s", code, errOut)
			}
		})
	}
}
