// Package adminauth guards the admin listener's pages: an optional HTTP
// basic-auth password and an optional verified client certificate. Probes
// (/healthz, /readyz) are left open by the caller's choice of what to wrap:
// a kubelet can neither present a client certificate nor keep a password
// out of the pod spec.
package adminauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// MaxPasswordFile bounds the password file read: a password is a line.
const MaxPasswordFile = 4096

// Options configures New. The zero value guards nothing.
type Options struct {
	// Username and Password, when Password is set, are required as HTTP
	// basic auth. Username empty means "admin".
	Username, Password string
	// RequireClientCert refuses a request whose connection did not present
	// a client certificate that the listener verified (the listener's TLS
	// config verifies it against the admin client CA).
	RequireClientCert bool
}

// Guard wraps handlers with the checks of its Options.
type Guard struct {
	user, pass [sha256.Size]byte
	password   bool
	clientCert bool
}

// New returns the guard.
func New(opts Options) *Guard {
	g := &Guard{password: opts.Password != "", clientCert: opts.RequireClientCert}
	if opts.Username == "" {
		opts.Username = "admin"
	}
	// Compared as hashes: equal lengths, so the comparison's time says
	// nothing about the password's length either.
	g.user, g.pass = sha256.Sum256([]byte(opts.Username)), sha256.Sum256([]byte(opts.Password))
	return g
}

// ReadPassword reads a password file: its first line, without the line
// end. An empty or oversized file is an error.
func ReadPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the admin password: %w", err)
	}
	if len(b) > MaxPasswordFile {
		return "", fmt.Errorf("%s is over %d bytes: it should hold one line, the password", path, MaxPasswordFile)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return "", errors.New(path + " is empty: write the password on its first line")
	}
	return line, nil
}

// Enabled reports whether the guard checks anything.
func (g *Guard) Enabled() bool { return g.password || g.clientCert }

// Wrap returns h behind the guard's checks.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	if !g.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.clientCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			refuse(w, http.StatusForbidden, "a client certificate from the admin client CA is required\n")
			return
		}
		if g.password && !g.passwordOK(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="scgate admin", charset="UTF-8"`)
			refuse(w, http.StatusUnauthorized, "the admin password is required\n")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (g *Guard) passwordOK(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	// Both compared every time, so which one was wrong does not show.
	return subtle.ConstantTimeCompare(u[:], g.user[:])&subtle.ConstantTimeCompare(p[:], g.pass[:]) == 1
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}
