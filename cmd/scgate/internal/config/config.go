package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/scgate/scgate/internal/tomlpos"
)

// Config is config.toml. Every setting is documented in config.example.toml
// and docs/configuration.md's reference. A field tagged reload:"live" is
// applied by SIGHUP without a restart; every other setting needs one (the
// gateway derives the list from these tags).
type Config struct {
	Server   Server   `toml:"server"`
	Admin    Admin    `toml:"admin"`
	Upstream Upstream `toml:"upstream"`
	// Upstreams are the panels of a gateway in front of several; Upstream
	// is the one panel of a gateway in front of one.
	Upstreams map[string]Upstream `toml:"upstreams"`
	Panels    Panels              `toml:"panels"`
	Vault     Vault               `toml:"vault"`
	Identity  Identity            `toml:"identity"`
	Limits    Limits              `toml:"limits"`
	Policy    Policy              `toml:"policy" reload:"live"`
	Log       Log                 `toml:"log"`
	Rotation  Rotation            `toml:"rotation"`
	Tracing   Tracing             `toml:"tracing"`
	Cache     Cache               `toml:"cache"`

	singleUpstream bool // [upstream] was written

	path  string         // the file it came from
	lines *tomlpos.Index // key path → line, for semantic errors
}

// Path is the file the config was read from.
func (c *Config) Path() string { return c.path }

// Line is the line of the setting at key (its table's, or 1, when the
// setting is not written in the file).
func (c *Config) Line(key ...string) int { return c.lines.Line(key...) }

// Problem is one validation failure at the line of the setting it names:
// FILE:LINE: key: msg.
func (c *Config) Problem(msg string, key ...string) error {
	return fmt.Errorf("%s:%d: %s: %s", c.path, c.Line(key...), strings.Join(key, "."), msg)
}

// Wrap is Problem for an error (a file that cannot be read, say).
func (c *Config) Wrap(err error, key ...string) error {
	return fmt.Errorf("%s:%d: %s: %w", c.path, c.Line(key...), strings.Join(key, "."), err)
}

// Duration is a time.Duration written as a Go duration string ("5s", "2m").
// A zero Duration that was written in the file ("0s") stays zero; only an
// absent one takes the default.
type Duration struct {
	time.Duration
	set bool
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like \"500ms\", \"10s\" or \"2m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("%q: a duration must not be negative", b)
	}
	d.Duration, d.set = v, true
	return nil
}

// IsSet reports whether the duration was written in the file.
func (d Duration) IsSet() bool { return d.set }

func (d *Duration) orDefault(def time.Duration) {
	if !d.set {
		d.Duration = def
	}
}

// Load reads, decodes, completes and validates a config file. Every problem
// is reported at once, each as FILE:LINE: key: what to fix.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for a file already read. Relative paths in the file are
// relative to path's folder.
func Parse(path string, data []byte) (*Config, error) {
	cfg := &Config{path: path}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, decodeError(path, err)
	}
	cfg.lines = tomlpos.Build(data)
	cfg.applyDefaults()
	cfg.resolvePaths(filepath.Dir(path))
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// applyDefaults completes every section, in an order where a section's
// defaults may depend on the sections before it.
func (c *Config) applyDefaults() {
	c.Server.defaults()
	c.Admin.defaults()
	c.upstreamsDefaults()
	c.Upstream.defaults()
	c.Vault.defaults()
	c.Identity.defaults(c.ClientCertsConfigured())
	c.Limits.defaults()
	c.Log.defaults()
	c.Rotation.defaults()
	c.Tracing.defaults()
	c.Cache.defaults()
}

// resolvePaths makes relative file paths relative to the config file's folder,
// so a config works whatever the working directory.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{&c.Server.CertFile, &c.Server.KeyFile, &c.Server.ClientCAFile,
		&c.Upstream.CAFile, &c.Vault.File, &c.Vault.AgeIdentityFile, &c.Server.ACME.Storage, &c.Server.ACME.CARootsFile,
		&c.Identity.JWT.JWKSFile, &c.Identity.JWT.CAFile, &c.Identity.JWT.TokenFile, &c.Limits.Redis.PasswordFile,
		&c.Tracing.CAFile, &c.Tracing.CertFile, &c.Tracing.KeyFile, &c.Tracing.HeadersFile,
		&c.Admin.PasswordFile, &c.Admin.CertFile, &c.Admin.KeyFile, &c.Admin.ClientCAFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	c.resolveBundlePaths(dir)
	for name, u := range c.Upstreams {
		if u.CAFile != "" && !filepath.IsAbs(u.CAFile) {
			u.CAFile = filepath.Join(dir, u.CAFile)
			c.Upstreams[name] = u
		}
	}
}

// problems collects a file's validation failures.
type problems struct {
	c    *Config
	errs []error
}

func (p *problems) add(msg string, key ...string) { p.errs = append(p.errs, p.c.Problem(msg, key...)) }

func (c *Config) validate() error {
	p := &problems{c: c}
	c.Server.validate(p, c)
	c.Admin.validate(p, c)
	c.validateUpstreams(p)
	c.Vault.validate(p)
	c.Identity.validate(p, c)
	c.Limits.validate(p)
	c.Policy.validate(p)
	c.Log.validate(p)
	c.Rotation.validate(p, c)
	c.Tracing.validate(p)
	c.validateBuffers(p)
	c.Cache.validate(p, c)
	return errors.Join(p.errs...)
}

// decodeError turns go-toml's errors into FILE:LINE: messages in the words
// of the file.
func decodeError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make([]error, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			row, _ := e.Position()
			key := e.Key()
			msg := fmt.Sprintf("%s:%d: unknown setting %q", path, row, strings.Join(key, "."))
			if s := suggest(key); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; see config.example.toml for the valid ones"
			}
			errs = append(errs, errors.New(msg))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := plainWords(strings.TrimPrefix(de.Error(), "toml: "))
		if k := de.Key(); len(k) > 0 {
			return fmt.Errorf("%s:%d: %s: %s", path, row, strings.Join(k, "."), msg)
		}
		return fmt.Errorf("%s:%d: %s", path, row, msg)
	}
	return fmt.Errorf("%s: %s", path, plainWords(err.Error()))
}

var (
	// go-toml names the Go field and type a value did not fit.
	intoField = regexp.MustCompile(`cannot decode TOML (\w+) into struct field \S+ of type (\S+)`)
	intoType  = regexp.MustCompile(`cannot decode TOML (\w+) into (?:a Go value of type )?(\S+)`)
	goName    = regexp.MustCompile(`\bconfig\.[A-Za-z.]+`)
)

// plainWords rewrites go-toml's messages that name Go types into what to
// write in the file.
func plainWords(msg string) string {
	if m := intoField.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("a %s does not fit here: write %s", m[1], kindWords(m[2]))
	}
	if m := intoType.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("a %s does not fit here: write %s", m[1], kindWords(m[2]))
	}
	return goName.ReplaceAllString(msg, "this setting")
}

func kindWords(goType string) string {
	goType = strings.TrimPrefix(goType, "*")
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list, like [\"a\", \"b\"]"
	case strings.HasPrefix(goType, "map["):
		return "a table of settings"
	case goType == "string":
		return "a string in quotes"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "float"):
		return "a number, like 2.0"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasSuffix(goType, "Duration"):
		return "a duration in quotes, like \"10s\""
	}
	return "a table of settings"
}

// suggest returns the known setting closest to the unknown key (its last
// part), or "" when none is close enough to be a typo.
func suggest(key []string) string {
	if len(key) == 0 {
		return ""
	}
	t := reflect.TypeOf(Config{})
	for _, k := range key[:len(key)-1] {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			f, ok := fieldByTag(t, k)
			if !ok {
				return ""
			}
			t = f.Type
		case reflect.Map:
			t = t.Elem()
		default:
			return ""
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	last := key[len(key)-1]
	best, bestD := "", 3
	for i := range t.NumField() {
		name := tomlName(t.Field(i))
		if name == "" {
			continue
		}
		if d := distance(strings.ToLower(last), name); d < bestD && d <= max(1, len(name)/3) {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return strings.Join(append(append([]string{}, key[:len(key)-1]...), best), ".")
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if tomlName(t.Field(i)) == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// distance is the optimal string alignment distance between a and b: the
// edits (insert, delete, replace, swap two neighbours) from one to the other.
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
