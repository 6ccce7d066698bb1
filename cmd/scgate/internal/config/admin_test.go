package config

import (
	"strings"
	"testing"
)

func TestAdminSettings(t *testing.T) {
	c, err := Parse("/etc/scgate/config.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Admin.StatusPageOn() || c.Admin.Username != DefaultAdminUsername || c.Admin.TLS() || c.Admin.Warning() != "" {
		t.Errorf("defaults: %+v, warning %q", c.Admin, c.Admin.Warning())
	}
	for _, tc := range []struct{ name, admin, want string }{
		{"cert without key", "cert_file = \"a.crt\"\n", "admin.cert_file: cert_file and key_file go together"},
		{"client CA without TLS", "client_ca_file = \"ca.crt\"\n", "admin.client_ca_file: client certificates need TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cfg.toml", []byte(minimal+"[admin]\n"+tc.admin))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	c, err = Parse("/etc/scgate/config.toml", []byte(minimal+"[admin]\nlisten = \"0.0.0.0:9090\"\nstatus_page = false\npassword_file = \"pw\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.StatusPageOn() || c.Admin.PasswordFile != "/etc/scgate/pw" || c.Admin.Warning() != "" {
		t.Errorf("%+v: want the page off, the password file resolved, no warning", c.Admin)
	}
	c, err = Parse("/etc/scgate/config.toml", []byte(minimal+"[admin]\nlisten = \"0.0.0.0:9090\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Admin.Warning(); !strings.Contains(w, "is not loopback and has neither password_file nor client_ca_file") {
		t.Errorf("warning %q", w)
	}
}
