// Package docs_test tests the documentation: README.md and docs/*.md. Every
// TOML block marked runnable passes `scgate check`, and every Markdown link
// stays inside the repository and reaches a file (and heading) that exists.
// docs/testing.md, "Testing the docs", describes the markers.
package docs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// externalAllowed lists the only http(s) links the docs may carry. It is
// empty on purpose: users read these docs offline, so name outside sites in
// plain text instead of linking them.
var externalAllowed = []string{}

// A block is a fenced code block of a Markdown file.
type block struct {
	file string // relative to the repository root
	line int    // of the opening fence
	info string // the fence's info string, e.g. "toml runnable"
	text string
}

// mdFile is one documentation file with its lines.
type mdFile struct {
	rel   string
	path  string
	lines []string
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// docFiles returns README.md and every docs/*.md.
func docFiles(t *testing.T) []mdFile {
	t.Helper()
	root := repoRoot(t)
	names, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	names = append([]string{filepath.Join(root, "README.md")}, names...)
	var files []mdFile
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, n)
		files = append(files, mdFile{rel: filepath.ToSlash(rel), path: n, lines: strings.Split(string(b), "\n")})
	}
	return files
}

// blocks returns the fenced code blocks of f.
func blocks(f mdFile) []block {
	var out []block
	var cur *block
	var text strings.Builder
	for i, l := range f.lines {
		if !strings.HasPrefix(l, "```") {
			if cur != nil {
				text.WriteString(l + "\n")
			}
			continue
		}
		if cur == nil {
			cur = &block{file: f.rel, line: i + 1, info: strings.TrimSpace(strings.TrimPrefix(l, "```"))}
			text.Reset()
			continue
		}
		cur.text = text.String()
		out = append(out, *cur)
		cur = nil
	}
	return out
}

// The kinds of runnable block (the second word of a toml block's info string).
const (
	kindConfig   = "runnable"          // a whole config.toml
	kindFragment = "runnable-fragment" // some sections of a config.toml
	kindVault    = "runnable-vault"    // a whole vault file
)

// baseSections complete a fragment (each only when the fragment does not set
// that table) and wrap a vault block.
var baseSections = []struct{ table, text string }{
	{"server", "[server]\nlisten = \"127.0.0.1:8443\"\ntls = \"self-signed\"\n"},
	{"upstream", "[upstream]\nurl = \"https://radio.example.com:1030\"\n"},
	{"vault", "[vault]\nfile = \"doc-vault.toml\"\n"},
	{"identity", "[identity]\nstatic = \"playlist-sync\"\n"},
}

// docVault is the vault given to config blocks that name one.
const docVault = `[callers]
"playlist-sync" = "playlist-admin"
"spiffe://prod.example/ns/radio/sa/stats" = "readonly"

[[keys.playlist-admin]]
secret = "DocTest1.0123456789abcdefghijklmnop"

[[keys.readonly]]
secret = "DocTest2.0123456789abcdefghijklmnop"
`

// TestRunnableBlocksPassCheck: every block marked runnable passes `scgate
// check`. Absolute paths in a block are moved under a temporary root, and the
// files a block names are made there: certificates for *_file settings that
// hold certificates, a key for key_file, the doc vault for a vault file, a
// secret for secret_file, password_file and token_file.
func TestRunnableBlocksPassCheck(t *testing.T) {
	root := repoRoot(t)
	var runnable []block
	for _, f := range docFiles(t) {
		for _, b := range blocks(f) {
			words := strings.Fields(b.info)
			if len(words) >= 2 && strings.HasPrefix(words[1], "runnable") {
				if words[0] != "toml" || !slices.Contains([]string{kindConfig, kindFragment, kindVault}, words[1]) {
					t.Errorf("%s:%d: unknown runnable block %q (use toml %s, %s or %s)", b.file, b.line, b.info, kindConfig, kindFragment, kindVault)
					continue
				}
				runnable = append(runnable, b)
			}
		}
	}
	// The quick starts and the vault example are runnable at least.
	if len(runnable) < 3 {
		t.Fatalf("only %d runnable blocks found; the quick starts and the vault example should be marked", len(runnable))
	}
	bin := buildScgate(t, root)
	cert, key := selfSigned(t)
	for _, b := range runnable {
		t.Run(fmt.Sprintf("%s:%d", b.file, b.line), func(t *testing.T) {
			dir := t.TempDir()
			kind := strings.Fields(b.info)[1]
			text := materialise(t, dir, b.text, cert, key)
			var config string
			switch kind {
			case kindVault:
				write(t, filepath.Join(dir, "doc-vault.toml"), text)
				config = complete("")
			case kindFragment:
				config = complete(text)
				write(t, filepath.Join(dir, "doc-vault.toml"), docVault)
			default:
				config = text
			}
			path := filepath.Join(dir, "config.toml")
			write(t, path, config)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "check", "--config", path).CombinedOutput()
			if err != nil {
				t.Errorf("%s:%d: scgate check: %v\n%s\nconfig:\n%s", b.file, b.line, err, out, config)
			}
		})
	}
}

// complete adds to a fragment the base sections whose tables it does not set.
func complete(fragment string) string {
	var set map[string]any
	_ = toml.Unmarshal([]byte(fragment), &set) // a broken fragment fails check anyway
	var b strings.Builder
	b.WriteString(fragment)
	for _, s := range baseSections {
		if _, ok := set[s.table]; !ok {
			b.WriteString("\n" + s.text)
		}
	}
	return b.String()
}

// pathSetting is a setting whose value is an absolute or relative file path.
var pathSetting = regexp.MustCompile(`(?m)^\s*("?[A-Za-z0-9_.\-]+"?)\s*=\s*"([^"]+)"`)

// materialise moves the block's absolute paths under dir and creates the files
// its settings name there, returning the block with the paths rewritten.
func materialise(t *testing.T, dir, text string, cert, key []byte) string {
	t.Helper()
	out := text
	for _, m := range pathSetting.FindAllStringSubmatch(text, -1) {
		name, value := strings.Trim(m[1], `"`), m[2]
		var content []byte
		isDir := false
		switch {
		case name == "storage":
			isDir = true
		case name == "key_file":
			content = key
		case strings.HasSuffix(name, "cert_file"), strings.HasSuffix(name, "ca_file"),
			strings.HasSuffix(value, ".pem"), strings.HasSuffix(value, ".crt"):
			content = cert
		case name == "file" && !strings.HasSuffix(value, ".age"):
			content = []byte(docVault)
		case name == "secret_file" || name == "password_file" || name == "token_file":
			content = []byte("DocTest3.0123456789abcdefghijklmnop\n")
		default:
			continue
		}
		target := value
		if filepath.IsAbs(value) {
			target = filepath.Join(dir, value)
			out = strings.ReplaceAll(out, `"`+value+`"`, `"`+filepath.ToSlash(target)+`"`)
		} else {
			target = filepath.Join(dir, value)
		}
		if isDir {
			if err := os.MkdirAll(target, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		write(t, target, string(content))
	}
	return out
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// buildScgate builds the binary once for all blocks.
func buildScgate(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "scgate")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/scgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/scgate: %v\n%s", err, out)
	}
	return bin
}

// selfSigned returns a CA certificate for localhost and its key, in PEM: the
// same pair serves as serving certificate, client CA and trust bundle.
func selfSigned(t *testing.T) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "scgate docs test"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// mdLink is an inline Markdown link or image: [text](target) or ![alt](target).
var mdLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// autoLink is an autolink: <https://...>.
var autoLink = regexp.MustCompile(`<(https?://[^>]+)>`)

// inlineCode is a code span, whose text is not a link.
var inlineCode = regexp.MustCompile("`[^`]*`")

// TestLinks: every Markdown link of README.md and docs/ points at a file of
// the repository that exists, without a relative path that leaves it, and
// at a heading of that file when it names an anchor; links outside the
// repository (http, https, mailto, ...) are refused unless externalAllowed
// lists them.
func TestLinks(t *testing.T) {
	problems, external, checked := linkProblems(repoRoot(t), docFiles(t))
	for _, p := range problems {
		t.Error(p)
	}
	if checked == 0 {
		t.Fatal("no links found: the link pattern is broken")
	}
	for _, e := range external {
		t.Logf("external: %s", e)
	}
}

// TestLinkCheckerCatches: the checker reports each kind of bad link and
// accepts the good ones, so TestLinks cannot pass by checking nothing.
func TestLinkCheckerCatches(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "docs", "b.md"), "# B\n\n## Some heading: here\n")
	write(t, filepath.Join(root, "outside.md"), "x")
	lines := []string{
		"# A",
		"[ok](b.md) [ok](b.md#some-heading-here) [ok](#a) `[code](nowhere.md)`",
		"[missing](c.md)",
		"[bad anchor](b.md#no-such-heading)",
		"[escapes](../../etc/passwd)",
		"[web](https://example.com) <https://example.org>",
		"```",
		"[in a fence](nowhere.md)",
		"```",
	}
	a := mdFile{rel: "docs/a.md", path: filepath.Join(root, "docs", "a.md"), lines: lines}
	write(t, a.path, strings.Join(lines, "\n"))
	problems, external, checked := linkProblems(root, []mdFile{a})
	if checked != 8 {
		t.Errorf("checked %d links, want 8", checked)
	}
	if len(external) != 2 {
		t.Errorf("external %v, want the two web links", external)
	}
	for _, want := range []string{`"c.md"`, `"b.md#no-such-heading"`, `"../../etc/passwd"`, `"https://example.com"`, `"https://example.org"`} {
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p, want)
		}
		if !found {
			t.Errorf("no problem reported for %s; problems: %q", want, problems)
		}
	}
	if len(problems) != 5 {
		t.Errorf("problems %q, want 5", problems)
	}
}

// linkProblems checks the links of files (see TestLinks) and returns the
// problems, the external links and how many links it checked.
func linkProblems(root string, files []mdFile) (problems, external []string, checked int) {
	anchorCache := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchorCache[path]; ok {
			return a
		}
		a := map[string]bool{}
		if b, err := os.ReadFile(path); err == nil {
			a = headingAnchors(strings.Split(string(b), "\n"))
		}
		anchorCache[path] = a
		return a
	}
	for _, f := range files {
		inFence := false
		for i, line := range f.lines {
			if strings.HasPrefix(line, "```") {
				inFence = !inFence
				continue
			}
			if inFence {
				continue
			}
			plain := inlineCode.ReplaceAllString(line, "")
			var targets []string
			for _, m := range mdLink.FindAllStringSubmatch(plain, -1) {
				targets = append(targets, m[1])
			}
			for _, m := range autoLink.FindAllStringSubmatch(plain, -1) {
				targets = append(targets, m[1])
			}
			for _, target := range targets {
				checked++
				where := fmt.Sprintf("%s:%d: link %q", f.rel, i+1, target)
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "//") {
					external = append(external, where)
					if !slices.Contains(externalAllowed, target) {
						problems = append(problems, where+" leaves the repository (name the site in plain text, or add it to externalAllowed and docs/testing.md)")
					}
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				dest := f.path
				if file != "" {
					if filepath.IsAbs(file) {
						problems = append(problems, where+" is an absolute path; use a path relative to "+f.rel)
						continue
					}
					dest = filepath.Join(filepath.Dir(f.path), filepath.FromSlash(file))
					rel, err := filepath.Rel(root, dest)
					if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
						problems = append(problems, where+" leaves the repository")
						continue
					}
					if _, err := os.Stat(dest); err != nil {
						problems = append(problems, fmt.Sprintf("%s: %s does not exist", where, filepath.ToSlash(rel)))
						continue
					}
				}
				if anchor != "" {
					if !strings.HasSuffix(dest, ".md") {
						problems = append(problems, where+": an anchor into a file that is not Markdown")
					} else if !anchorsOf(dest)[anchor] {
						problems = append(problems, fmt.Sprintf("%s: no heading with anchor #%s", where, anchor))
					}
				}
			}
		}
	}
	return problems, external, checked
}

// headingAnchors returns the anchors GitHub gives the headings of a Markdown
// file: lower case, punctuation dropped, spaces as hyphens, and -1, -2, ...
// for repeats.
func headingAnchors(lines []string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range lines {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		a := slug(title)
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

func slug(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		case r > 127 && (r < 0x2000 || r > 0x2bff): // letters of other scripts stay; arrows and dashes go
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestSlug pins the anchor rule the link check relies on.
func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Runbook: rotating a key":                           "runbook-rotating-a-key",
		"Client certificates (mTLS, SPIFFE)":                "client-certificates-mtls-spiffe",
		"Istio or Envoy in front (X-Forwarded-Client-Cert)": "istio-or-envoy-in-front-x-forwarded-client-cert",
		"A fleet: shared limits in Redis":                   "a-fleet-shared-limits-in-redis",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
	a := headingAnchors([]string{"## Limits", "```", "# not a heading", "```", "### Limits"})
	if !a["limits"] || !a["limits-1"] || a["not-a-heading"] {
		t.Errorf("anchors %v", a)
	}
}
