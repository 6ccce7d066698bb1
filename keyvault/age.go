package keyvault

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// A vault may be encrypted as a whole with age (https://age-encryption.org),
// binary or ASCII-armored, so that it can live in git or a ConfigMap. It is
// recognised by its header and decrypted with LoadOptions.Identities before
// anything else; everything after that (validation, line numbers, the
// digest) is about the decrypted content.

// ageHeader starts every binary age file; armored files start with
// armor.Header.
const ageHeader = "age-encryption.org/v1\n"

// IsEncrypted reports whether data is an age-encrypted file, binary or
// armored. Leading whitespace is allowed before an armored file, as age
// itself allows.
func IsEncrypted(data []byte) bool {
	return bytes.HasPrefix(data, []byte(ageHeader)) ||
		bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header))
}

// ParseIdentities reads an age identity file (one AGE-SECRET-KEY-1… per line,
// "#" comments allowed), as written by age-keygen. name labels the file in
// errors, which never repeat its content.
func ParseIdentities(name string, data []byte) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		// age's message may go on to quote what it could not parse; keep only
		// its first part ("error at line 3", "no identities found").
		reason, _, _ := strings.Cut(err.Error(), ":")
		return nil, fmt.Errorf("age identity file %s: %s (write one AGE-SECRET-KEY-1… per line, as age-keygen does)", name, reason)
	}
	return ids, nil
}

// ErrEncryptedNoIdentity is wrapped by the error of loading an encrypted
// vault without any identity to decrypt it with.
var ErrEncryptedNoIdentity = errors.New("keyvault: the vault is age-encrypted and no identity was given")

// decrypt returns the plaintext of an age-encrypted vault, at most
// MaxFileSize bytes. Its errors say what to do.
func decrypt(data []byte, ids []age.Identity) ([]byte, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: set vault.age_identity_file in config.toml to the identity that the vault was encrypted to", ErrEncryptedNoIdentity)
	}
	var src io.Reader = bytes.NewReader(data)
	if !bytes.HasPrefix(data, []byte(ageHeader)) {
		src = armor.NewReader(bytes.NewReader(bytes.TrimLeft(data, " \t\r\n")))
	}
	r, err := age.Decrypt(src, ids...)
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &noMatch):
		return nil, fmt.Errorf("the vault is age-encrypted to other recipients than the configured identity: re-encrypt it to this gateway's recipient (scgate vault encrypt --recipient age1…) or configure the matching identity: %w", err)
	case err != nil:
		return nil, fmt.Errorf("the age-encrypted vault cannot be decrypted (damaged or truncated file?): %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("the age-encrypted vault cannot be decrypted (damaged or truncated file?): %w", err)
	}
	if len(plain) > MaxFileSize {
		return nil, fmt.Errorf("the decrypted vault is larger than %d bytes", MaxFileSize)
	}
	return plain, nil
}

// Encrypt encrypts a vault's plaintext to recipients, armored (PEM-like text,
// for git and ConfigMaps) when armored is true.
func Encrypt(plain []byte, recipients []age.Recipient, armored bool) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("keyvault: Encrypt needs at least one recipient")
	}
	var out bytes.Buffer
	var dst io.Writer = &out
	var aw io.WriteCloser
	if armored {
		aw = armor.NewWriter(&out)
		dst = aw
	}
	w, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return nil, fmt.Errorf("keyvault: encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("keyvault: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("keyvault: encrypt: %w", err)
	}
	if aw != nil {
		if err := aw.Close(); err != nil {
			return nil, fmt.Errorf("keyvault: encrypt: %w", err)
		}
	}
	return out.Bytes(), nil
}

// Decrypt returns the plaintext of an age-encrypted vault file (for `scgate
// vault decrypt`), or data itself when it is not encrypted.
func Decrypt(data []byte, ids []age.Identity) ([]byte, error) {
	if !IsEncrypted(data) {
		return data, nil
	}
	return decrypt(data, ids)
}
