package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const permsConfig = `
[upstream]
url = "https://radio.example:1030"
[vault]
file = "keys.toml"
[identity]
static = "svc"
`

// TestKeyFilePermissions: check and run refuse key material or a config
// that others can write, warn when others can read key material, and leave
// a Kubernetes Secret volume (symlinks into ..data, 0644) alone.
func TestKeyFilePermissions(t *testing.T) {
	chmod := func(t *testing.T, path string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("world-writable vault is refused by check and run", func(t *testing.T) {
		p := writeConfig(t, permsConfig)
		chmod(t, filepath.Join(filepath.Dir(p), "keys.toml"), 0o666)
		for _, cmd := range []string{"check", "run"} {
			code, _, errOut := run(t, cmd, "--config", p)
			if code != 1 || !strings.Contains(errOut, "vault.file") || !strings.Contains(errOut, "writable by") {
				t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 1 naming vault.file as writable", cmd, code, errOut)
			}
		}
	})
	t.Run("group-writable config is refused", func(t *testing.T) {
		p := writeConfig(t, permsConfig)
		chmod(t, p, 0o664)
		code, _, errOut := run(t, "check", "--config", p)
		if code != 1 || !strings.Contains(errOut, "config file") || !strings.Contains(errOut, "its group") {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
	})
	t.Run("the override starts with a warning", func(t *testing.T) {
		p := writeConfig(t, permsConfig)
		src := strings.Replace(permsConfig, "[identity]", "dangerously_allow_writable_key_files = true\n[identity]", 1)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		chmod(t, filepath.Join(filepath.Dir(p), "keys.toml"), 0o666)
		code, _, errOut := run(t, "check", "--config", p)
		if code != 0 || !strings.Contains(errOut, "allowed by vault.dangerously_allow_writable_key_files") {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
	})
	t.Run("a vault in a folder others can write is refused", func(t *testing.T) {
		p := writeConfig(t, permsConfig)
		dir := filepath.Join(filepath.Dir(p), "shared")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(filepath.Dir(p), "keys.toml"), filepath.Join(dir, "keys.toml")); err != nil {
			t.Fatal(err)
		}
		src := strings.Replace(permsConfig, `file = "keys.toml"`, `file = "shared/keys.toml"`, 1)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		chmod(t, dir, 0o777)
		code, _, errOut := run(t, "check", "--config", p)
		if code != 1 || !strings.Contains(errOut, "vault.file") || !strings.Contains(errOut, "is in a folder writable by") {
			t.Errorf("world-writable folder: exit %d, stderr:\n%s", code, errOut)
		}
		chmod(t, dir, 0o777|os.ModeSticky) // sticky, as /tmp: only the owner may replace the file
		if code, _, errOut := run(t, "check", "--config", p); code != 0 || strings.Contains(errOut, "folder") {
			t.Errorf("sticky folder: exit %d, stderr:\n%s", code, errOut)
		}
	})
	t.Run("world-readable vault is warned about", func(t *testing.T) {
		p := writeConfig(t, permsConfig)
		chmod(t, filepath.Join(filepath.Dir(p), "keys.toml"), 0o644)
		code, _, errOut := run(t, "check", "--config", p)
		if code != 0 || !strings.Contains(errOut, "warning: vault.file") || !strings.Contains(errOut, "readable by every user") {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
	})
	t.Run("a Kubernetes Secret volume is accepted quietly", func(t *testing.T) {
		p := writeConfig(t, permsConfig)
		dir := filepath.Dir(p)
		secret := filepath.Join(dir, "secret")
		stamp := filepath.Join(secret, "..2026_12_02_10_00_00.000000001")
		if err := os.MkdirAll(stamp, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "keys.toml"), filepath.Join(stamp, "keys.toml")); err != nil {
			t.Fatal(err)
		}
		chmod(t, filepath.Join(stamp, "keys.toml"), 0o644) // the kubelet's defaultMode
		for old, link := range map[string]string{filepath.Base(stamp): filepath.Join(secret, "..data"),
			"..data/keys.toml": filepath.Join(secret, "keys.toml")} {
			if err := os.Symlink(old, link); err != nil {
				t.Fatal(err)
			}
		}
		src := strings.Replace(permsConfig, `file = "keys.toml"`, `file = "secret/keys.toml"`, 1)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := run(t, "check", "--config", p)
		if code != 0 || strings.Contains(errOut, "readable") || strings.Contains(errOut, "writable") {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
	})
}
