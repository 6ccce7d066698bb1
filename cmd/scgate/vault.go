package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/scgate/scgate/keyvault"
)

// cmdVault is `scgate vault encrypt` and `scgate vault decrypt`: age
// encryption of a whole vault, so that it can live in git or a ConfigMap.
func cmdVault(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"scgate vault needs a subcommand: encrypt or decrypt"}
	}
	switch args[0] {
	case "encrypt":
		return cmdVaultEncrypt(args[1:], stdout, stderr)
	case "decrypt":
		return cmdVaultDecrypt(args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown vault subcommand %q: use encrypt or decrypt", args[0])}
}

// cmdVaultEncrypt validates a plain vault and writes it encrypted to the
// recipients. It refuses an invalid vault, so that a broken file never gets
// as far as git.
func cmdVaultEncrypt(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("vault encrypt", stderr)
	var recipients keyList
	fs.Var(&recipients, "recipient", "an age recipient (age1…) that may decrypt the vault (repeat for several)")
	recipientsFile := fs.String("recipients-file", "", "a file of age recipients, one per line")
	in := fs.String("in", "", "the plain vault file")
	out := fs.String("out", "", "where to write the encrypted vault (replaced atomically; may be the file scgate watches)")
	armor := fs.Bool("armor", false, "write ASCII armor (text) rather than binary")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return usageError{"--in FILE and --out FILE are required"}
	}
	rs, err := parseRecipients(recipients, *recipientsFile)
	if err != nil {
		return err
	}
	plain, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	if keyvault.IsEncrypted(plain) {
		return fmt.Errorf("%s is already age-encrypted", *in)
	}
	v, _, err := keyvault.Parse(*in, plain, keyvault.LoadOptions{})
	if err != nil {
		return fmt.Errorf("refusing to encrypt an invalid vault (fix it first):\n%w", err)
	}
	if len(v.SecretFiles()) > 0 {
		fmt.Fprintf(stderr, "note: the vault reads %d secret_file(s); those files are not encrypted with it\n", len(v.SecretFiles()))
	}
	data, err := keyvault.Encrypt(plain, rs, *armor)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "encrypted %s (%d callers, %d keys) to %d recipient(s): %s\n", *in, len(v.Callers()), len(v.Keys()), len(rs), *out)
	return nil
}

func parseRecipients(flags []string, file string) ([]age.Recipient, error) {
	var rs []age.Recipient
	for _, r := range flags {
		parsed, err := age.ParseRecipients(strings.NewReader(r))
		if err != nil {
			return nil, usageError{fmt.Sprintf("--recipient %q is not an age recipient (age1…): %v", r, err)}
		}
		rs = append(rs, parsed...)
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		parsed, err := age.ParseRecipients(f)
		if err != nil {
			return nil, fmt.Errorf("--recipients-file %s: %w", file, err)
		}
		rs = append(rs, parsed...)
	}
	if len(rs) == 0 {
		return nil, usageError{"give at least one --recipient age1… (or --recipients-file): the public key of each identity that may decrypt the vault"}
	}
	return rs, nil
}

// cmdVaultDecrypt writes the plaintext of an encrypted vault to a file (mode
// 0600), never to the terminal: it holds the keys themselves.
func cmdVaultDecrypt(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("vault decrypt", stderr)
	identity := fs.String("identity", "", "the age identity file (AGE-SECRET-KEY-1…)")
	in := fs.String("in", "", "the encrypted vault file")
	out := fs.String("out", "", "where to write the plain vault (mode 0600); scgate never prints secrets")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *identity == "" || *in == "" || *out == "" {
		return usageError{"--identity FILE, --in FILE and --out FILE are required (the decrypted vault holds secrets, so it is only written to a file)"}
	}
	idData, err := os.ReadFile(*identity)
	if err != nil {
		return err
	}
	ids, err := keyvault.ParseIdentities(*identity, idData)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	if !keyvault.IsEncrypted(data) {
		return fmt.Errorf("%s is not age-encrypted", *in)
	}
	plain, err := keyvault.Decrypt(data, ids)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if err := writeFileAtomic(*out, plain); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "decrypted %s: %s (mode 0600; delete it once the vault is re-encrypted)\n", *in, *out)
	return nil
}

// writeFileAtomic writes data beside path and renames it over path (mode
// 0600), so a watching gateway never reads half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}
