package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// keyFile is a file whose permissions CheckKeyFiles judges.
type keyFile struct {
	setting string // as written in the config, e.g. "vault.file"
	path    string
	secret  bool // holds key material: world-readable is warned about
}

// keyFiles lists the files that hold secrets or decide where they go.
// The config file names the upstream that receives every key, so a config
// that others can write is as dangerous as a vault they can write; it is
// not secret, so being readable is fine.
func (c *Config) keyFiles() []keyFile {
	files := []keyFile{{"config file", c.path, false}, {"vault.file", c.Vault.File, true}}
	if c.Vault.AgeIdentityFile != "" {
		files = append(files, keyFile{"vault.age_identity_file", c.Vault.AgeIdentityFile, true})
	}
	if c.Server.KeyFile != "" {
		files = append(files, keyFile{"server.key_file", c.Server.KeyFile, true})
	}
	if p := c.Admin.PasswordFile; p != "" {
		files = append(files, keyFile{"admin.password_file", p, true})
	}
	if p := c.Admin.KeyFile; p != "" {
		files = append(files, keyFile{"admin.key_file", p, true})
	}
	if p := c.Limits.Redis.PasswordFile; p != "" {
		files = append(files, keyFile{"limits.redis.password_file", p, true})
	}
	if c.Tracing.Enabled {
		// The collector's token, and the key of scgate's client certificate.
		for _, f := range []keyFile{{"tracing.headers_file", c.Tracing.HeadersFile, true}, {"tracing.key_file", c.Tracing.KeyFile, true}} {
			if f.path != "" {
				files = append(files, f)
			}
		}
	}
	return files
}

// CheckKeyFiles judges the permissions of the files that hold key material:
//
//   - writable by group or others, or in a folder that group or others can
//     write without the sticky bit (they could replace the file): an error (anyone who can write the vault,
//     the age identity or the config can make scgate send keys elsewhere,
//     or swap a key), unless vault.dangerously_allow_writable_key_files;
//   - readable by others: a warning (anyone on the machine can read the
//     keys), except in a Kubernetes volume (Secret, ConfigMap, projected),
//     recognised by its "..data" folder: those are read-only mounts whose
//     files are 0644 by default, and inside a pod "others" are the
//     container's own processes.
//
// Files that do not exist are left to the loaders, which say so.
func (c *Config) CheckKeyFiles() (warnings []string, err error) {
	if runtime.GOOS == "windows" {
		return nil, nil // no Unix permission bits
	}
	var errs []error
	seenDirs := map[string]bool{}
	for _, f := range c.keyFiles() {
		if f.path == "" {
			continue
		}
		info, serr := os.Stat(f.path) // follows symlinks: the target's mode counts
		if serr != nil {
			continue
		}
		mode := info.Mode().Perm()
		kube := inKubernetesVolume(f.path)
		if mode&0o022 != 0 && !kube {
			msg := fmt.Sprintf("%s %s is writable by %s (mode %04o): whoever can write it can redirect or replace keys; run chmod go-w on it",
				f.setting, f.path, writers(mode), mode)
			if c.Vault.DangerouslyAllowWritableKeyFiles {
				warnings = append(warnings, msg+" (allowed by vault.dangerously_allow_writable_key_files)")
			} else {
				errs = append(errs, errors.New(msg+", or set vault.dangerously_allow_writable_key_files = true to start anyway"))
			}
		}
		if dir := filepath.Dir(f.path); !kube && !seenDirs[dir] {
			seenDirs[dir] = true
			if msg := writableDir(dir); msg != "" {
				msg = fmt.Sprintf("%s %s %s", f.setting, f.path, msg)
				if c.Vault.DangerouslyAllowWritableKeyFiles {
					warnings = append(warnings, msg+" (allowed by vault.dangerously_allow_writable_key_files)")
				} else {
					errs = append(errs, errors.New(msg+", or set vault.dangerously_allow_writable_key_files = true to start anyway"))
				}
			}
		}
		if f.secret && mode&0o004 != 0 && !kube {
			warnings = append(warnings, fmt.Sprintf("%s %s is readable by every user of this machine (mode %04o): run chmod o-r on it",
				f.setting, f.path, mode))
		}
	}
	return warnings, errors.Join(errs...)
}

// writableDir says how dir lets others replace the files in it, or "" when
// it does not: writable by group or others without the sticky bit (with it,
// as on /tmp, only a file's owner may rename or remove it).
func writableDir(dir string) string {
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return ""
	}
	mode := info.Mode()
	if mode.Perm()&0o022 == 0 || mode&fs.ModeSticky != 0 {
		return ""
	}
	return fmt.Sprintf("is in a folder writable by %s (mode %04o), who could replace it: run chmod go-w on the folder", writers(mode.Perm()), mode.Perm())
}

func writers(mode fs.FileMode) string {
	switch {
	case mode&0o020 != 0 && mode&0o002 != 0:
		return "its group and every user"
	case mode&0o002 != 0:
		return "every user"
	}
	return "its group"
}

// inKubernetesVolume reports whether path is a file of a volume written by
// the kubelet's atomic writer: a symlink to "..data/NAME" beside a "..data"
// symlink.
func inKubernetesVolume(path string) bool {
	target, err := os.Readlink(path)
	if err != nil || !strings.HasPrefix(filepath.ToSlash(target), "..data/") {
		return false
	}
	fi, err := os.Lstat(filepath.Join(filepath.Dir(path), "..data"))
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}
