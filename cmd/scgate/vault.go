package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/scgate/scgate/keyvault"
)

// newVaultCmd is `scgate vault encrypt` and `scgate vault decrypt`: age
// encryption of a whole vault, so that it can live in git or a ConfigMap.
func newVaultCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Encrypt or decrypt a vault with age",
		Long: `Encrypt a whole vault with age, so that it can live in git or a ConfigMap
(scgate decrypts it at load with vault.age_identity_file), or decrypt one
into a file to edit it.`,
		Example: `  scgate vault encrypt --recipient age1... --in keys.toml --out keys.toml.age
  scgate vault decrypt --identity key.txt --in keys.toml.age --out keys.toml`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{"scgate vault needs a subcommand: encrypt or decrypt"}
		},
	}
	cmd.AddCommand(newVaultEncryptCmd(), newVaultDecryptCmd())
	return cmd
}

// encryptOptions are the flags of `scgate vault encrypt`.
type encryptOptions struct {
	recipients     []string
	recipientsFile string
	in, out        string
	armor          bool
}

func newVaultEncryptCmd() *cobra.Command {
	var o encryptOptions
	cmd := &cobra.Command{
		Use:   "encrypt --recipient AGE1... --in FILE --out FILE [--armor]",
		Short: "Validate a plain vault and encrypt it with age",
		Long: `Validate a plain vault and write it encrypted to the age recipients. An
invalid vault is refused, so a broken file never gets as far as git. --out is
replaced atomically, so it may be the file a running scgate watches.`,
		Example: `  scgate vault encrypt --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --in keys.toml --out keys.toml.age
  scgate vault encrypt --recipients-file recipients.txt --armor --in keys.toml --out keys.toml.age`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return cmdVaultEncrypt(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
	cmd.Flags().StringArrayVar(&o.recipients, "recipient", nil, "an age recipient (age1…) that may decrypt the vault (repeat for several)")
	cmd.Flags().StringVar(&o.recipientsFile, "recipients-file", "", "a file of age recipients, one per line")
	cmd.Flags().StringVar(&o.in, "in", "", "the plain vault file")
	cmd.Flags().StringVar(&o.out, "out", "", "where to write the encrypted vault (replaced atomically; may be the file scgate watches)")
	cmd.Flags().BoolVar(&o.armor, "armor", false, "write ASCII armor (text) rather than binary")
	return cmd
}

// cmdVaultEncrypt validates a plain vault and writes it encrypted to the
// recipients. It refuses an invalid vault, so that a broken file never gets
// as far as git.
func cmdVaultEncrypt(o encryptOptions, stdout, stderr io.Writer) error {
	if o.in == "" || o.out == "" {
		return usageError{"--in FILE and --out FILE are required"}
	}
	rs, err := parseRecipients(o.recipients, o.recipientsFile)
	if err != nil {
		return err
	}
	plain, err := os.ReadFile(o.in)
	if err != nil {
		return err
	}
	if keyvault.IsEncrypted(plain) {
		return fmt.Errorf("%s is already age-encrypted", o.in)
	}
	v, _, err := keyvault.Parse(o.in, plain, keyvault.LoadOptions{})
	if err != nil {
		return fmt.Errorf("refusing to encrypt an invalid vault (fix it first):\n%w", err)
	}
	if len(v.SecretFiles()) > 0 {
		fmt.Fprintf(stderr, "note: the vault reads %d secret_file(s); those files are not encrypted with it\n", len(v.SecretFiles()))
	}
	data, err := keyvault.Encrypt(plain, rs, o.armor)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(o.out, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "encrypted %s (%d callers, %d keys) to %d recipient(s): %s\n", o.in, len(v.Callers()), len(v.Keys()), len(rs), o.out)
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

func newVaultDecryptCmd() *cobra.Command {
	var identity, in, out string
	cmd := &cobra.Command{
		Use:   "decrypt --identity FILE --in FILE --out FILE",
		Short: "Decrypt an encrypted vault into a file (mode 0600)",
		Long: `Decrypt an age-encrypted vault into a file (mode 0600), never to the
terminal: it holds the keys themselves. Delete it once the vault is
re-encrypted.`,
		Example: `  scgate vault decrypt --identity key.txt --in keys.toml.age --out keys.toml`,
		Args:    noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return cmdVaultDecrypt(identity, in, out, cmd.OutOrStdout())
		}),
	}
	cmd.Flags().StringVar(&identity, "identity", "", "the age identity file (AGE-SECRET-KEY-1…)")
	cmd.Flags().StringVar(&in, "in", "", "the encrypted vault file")
	cmd.Flags().StringVar(&out, "out", "", "where to write the plain vault (mode 0600); scgate never prints secrets")
	return cmd
}

// cmdVaultDecrypt writes the plaintext of an encrypted vault to a file (mode
// 0600), never to the terminal: it holds the keys themselves.
func cmdVaultDecrypt(identity, in, out string, stdout io.Writer) error {
	if identity == "" || in == "" || out == "" {
		return usageError{"--identity FILE, --in FILE and --out FILE are required (the decrypted vault holds secrets, so it is only written to a file)"}
	}
	idData, err := os.ReadFile(identity)
	if err != nil {
		return err
	}
	ids, err := keyvault.ParseIdentities(identity, idData)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	if !keyvault.IsEncrypted(data) {
		return fmt.Errorf("%s is not age-encrypted", in)
	}
	plain, err := keyvault.Decrypt(data, ids)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := writeFileAtomic(out, plain); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "decrypted %s: %s (mode 0600; delete it once the vault is re-encrypted)\n", in, out)
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
