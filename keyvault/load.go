package keyvault

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	toml "github.com/pelletier/go-toml/v2"

	"github.com/scgate/scgate/internal/tomlpos"
)

// MaxFileSize bounds the vault file and every secret_file the default reader
// reads, so a path pointing at something huge (or endless) cannot exhaust
// memory. A vault of a few hundred keys is a few tens of KiB.
const MaxFileSize = 1 << 20

// LoadOptions tunes [Load] and [Parse]. The zero value is ready to use.
type LoadOptions struct {
	// Now is the clock used for load-time warnings (a key with no version
	// valid now). nil means time.Now.
	Now func() time.Time
	// ReadFile reads the vault file and secret_files. nil means a reader like
	// os.ReadFile that refuses files over MaxFileSize. Tests inject fakes.
	ReadFile func(string) ([]byte, error)
	// Identities decrypt a vault encrypted with age (see [IsEncrypted]). A
	// plain vault needs none.
	Identities []age.Identity
	// Panels are the configured panels (upstreams) a key's upstream field
	// and a caller's panel table may name. Empty means one panel,
	// DefaultPanel, which keys need not name.
	Panels []string
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReadFile == nil {
		o.ReadFile = readFileLimited
	}
	return o
}

// readFileLimited is os.ReadFile with a size limit, for regular files only.
// Opening a FIFO for reading blocks until something writes to it, which would
// stall the watcher, every later SIGHUP and the shutdown that waits for them:
// the file is opened without blocking and anything but a regular file (a
// FIFO, a device, a directory) is refused.
func readFileLimited(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("not a regular file (%s)", st.Mode().Type())}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("file is larger than %d bytes", MaxFileSize)}
	}
	return data, nil
}

// Load reads and validates the vault file at path. Relative secret_file paths
// resolve against the vault file's directory. On success it returns the vault
// and any warnings; otherwise an error joining one *ParseError per problem.
func Load(path string, opts LoadOptions) (*Vault, []Warning, error) {
	res := load(path, opts.withDefaults())
	return res.vault, res.warnings, res.err
}

// Parse validates data as the vault file at path (path names the file in
// errors and anchors relative secret_file paths, which are read with
// opts.ReadFile). It reports like [Load].
func Parse(path string, data []byte, opts LoadOptions) (*Vault, []Warning, error) {
	res := parse(path, data, opts.withDefaults())
	return res.vault, res.warnings, res.err
}

// result is one load attempt. digest covers everything that was read, also
// when the attempt failed, so the watcher can report a given failure once.
type result struct {
	vault    *Vault
	warnings []Warning
	digest   [32]byte
	err      error
}

func load(path string, opts LoadOptions) result {
	data, err := opts.ReadFile(path)
	if err != nil {
		return result{err: joinSorted([]*ParseError{{
			File: path, Message: "cannot read the vault file: " + ioReason(err), Err: err,
		}})}
	}
	return parse(path, data, opts)
}

func parse(path string, data []byte, opts LoadOptions) result {
	c := &checker{path: path, file: path, dir: filepath.Dir(path), opts: opts, h: sha256.New(), seen: make(map[string]string),
		panels: opts.panelSet()}
	if IsEncrypted(data) {
		plain, err := decrypt(data, opts.Identities)
		if err != nil {
			c.h.Write(data)
			c.errs = append(c.errs, &ParseError{File: path, Message: err.Error(), Err: err})
			return result{err: joinSorted(c.errs), digest: c.sum()}
		}
		// Lines in messages are lines of the plaintext, which
		// `scgate vault decrypt` shows.
		data = plain
		c.file = path + " (decrypted)"
	}
	// The digest covers the plaintext, so re-encrypting the same vault (age
	// output differs every time) is not a change.
	c.h.Write(data)
	if len(data) > MaxFileSize {
		c.fail(0, "the vault file is larger than %d bytes", MaxFileSize)
		return result{err: joinSorted(c.errs), digest: c.sum()}
	}
	doc, err := decode(data)
	if err != nil {
		c.errs = append(c.errs, c.syntaxError(err))
		return result{err: joinSorted(c.errs), digest: c.sum()}
	}
	c.ix = tomlpos.Build(data)
	v := c.build(doc)
	if len(c.errs) > 0 {
		return result{err: joinSorted(c.errs), digest: c.sum()}
	}
	v.digest = c.sum()
	return result{vault: v, warnings: c.warnings(v, opts.Now()), digest: v.digest}
}

// checker validates one decoded vault file, collecting every problem.
type checker struct {
	path  string // the vault file
	file  string // how messages name it: path, or "path (decrypted)"
	dir   string
	opts  LoadOptions
	ix    *tomlpos.Index
	h     hash.Hash
	errs  []*ParseError
	seen  map[string]string // secret value → where it was first defined
	files []string
	// panels are the panel names keys may name, sorted.
	panels []string
}

func (c *checker) fail(line int, format string, args ...any) {
	c.errs = append(c.errs, &ParseError{File: c.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) sum() [32]byte {
	var d [32]byte
	c.h.Sum(d[:0])
	return d
}

// hashFile adds a secret_file to the digest, length-prefixed so that no two
// different sets of files hash alike.
func (c *checker) hashFile(path string, data []byte) {
	var n [binary.MaxVarintLen64]byte
	c.h.Write(n[:binary.PutUvarint(n[:], uint64(len(path)))])
	c.h.Write([]byte(path))
	c.h.Write(n[:binary.PutUvarint(n[:], uint64(len(data)))])
	c.h.Write(data)
}

// syntaxError turns a decoder error into a ParseError. The decoder's message
// is kept (it says what is wrong) except for quoted input it may carry: a
// float parse failure, for one, repeats the offending text, which could be a
// mistyped secret.
func (c *checker) syntaxError(err error) *ParseError {
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	if i := strings.Index(msg, ": strconv."); i >= 0 {
		msg = msg[:i]
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &ParseError{File: c.file, Message: "invalid TOML: " + msg}
	}
	row, col := de.Position()
	return &ParseError{File: c.file, Line: row, Message: fmt.Sprintf("invalid TOML at column %d: %s", col, msg)}
}

// build validates the decoded document and assembles the vault. The vault is
// only meaningful when no error was collected.
func (c *checker) build(doc map[string]any) *Vault {
	for _, name := range sortedKeys(doc) {
		if name != "callers" && name != "keys" {
			c.fail(c.ix.Line(name), "unknown field %s at the top level (a vault has only [callers] and [[keys.NAME]] tables)%s",
				c.show(name), suggest(name, "callers", "keys"))
		}
	}
	keys := c.keys(doc["keys"])
	callers := c.callers(doc["callers"], keys)
	if len(keys) == 0 && len(callers) == 0 && len(c.errs) == 0 {
		// Almost always a file caught half-written or emptied by mistake;
		// serving it would refuse every request.
		c.fail(0, "the vault defines no callers and no keys (is the file empty or truncated?)")
	}
	v := &Vault{
		path:      c.path,
		keys:      keys,
		callers:   callers,
		panels:    c.panels,
		callersOf: make(map[string][]string),
	}
	for _, name := range sortedKeys(keys) {
		v.sortedKeys = append(v.sortedKeys, keys[name])
	}
	v.callerNames = sortedKeys(callers)
	for _, caller := range v.callerNames {
		for _, k := range callers[caller].byPanel {
			v.callersOf[k.Name] = append(v.callersOf[k.Name], caller)
		}
	}
	slices.Sort(c.files)
	v.secretFiles = slices.Compact(c.files)
	return v
}

// warnings lists what an operator should know about a valid vault.
func (c *checker) warnings(v *Vault, now time.Time) []Warning {
	var ws []Warning
	warn := func(line int, format string, args ...any) {
		ws = append(ws, Warning{File: c.file, Line: line, Message: fmt.Sprintf(format, args...)})
	}
	for _, k := range v.sortedKeys {
		line := c.ix.Line("keys", k.Name)
		if len(v.callersOf[k.Name]) == 0 {
			warn(line, "key %q is not used by any caller", k.Name)
		}
		if k.Active(now) != nil {
			continue
		}
		if next := nextPending(k, now); next != nil {
			warn(line, "key %q has no version valid now; the next one (line %d) becomes valid at %s, and until then its callers get no_valid_key (503)",
				k.Name, next.Line, next.NotBefore.Format(time.RFC3339))
		} else {
			warn(line, "key %q has no version valid now (all have expired): its callers get no_valid_key (503) until a valid version is added", k.Name)
		}
	}
	return ws
}

// nextPending returns the version of k that becomes valid soonest after now.
func nextPending(k *Key, now time.Time) *Version {
	var next *Version
	for _, v := range k.Versions {
		if v.NotBefore.After(now) && (next == nil || v.NotBefore.Before(next.NotBefore)) {
			next = v
		}
	}
	return next
}

// ioReason describes a read failure without repeating the path (messages
// name it themselves) and never with file content.
func ioReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func sortedKeys[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
