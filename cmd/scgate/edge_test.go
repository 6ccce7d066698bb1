package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLoopbackGatewayAnswersOnlyItsOwnHost: a gateway built from a config
// whose listen address is loopback and that sets no server.hosts answers
// its own address and localhost at its port, and 421 to a rebinding
// page's Host; a cross-site browser request gets 403; server.hosts
// replaces the default.
func TestLoopbackGatewayAnswersOnlyItsOwnHost(t *testing.T) {
	up := standinUpstream(t)
	base := fmt.Sprintf("[admin]\nlisten = \"127.0.0.1:0\"\n[upstream]\nurl = %q\n[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n", up.URL)
	ask := func(t *testing.T, addr, host, extra string) int {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, "GET /api/v2/history/ HTTP/1.1\r\nHost: "+host+"\r\n"+extra+"\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("loopback default", func(t *testing.T) {
		g, _ := startGateway(t, "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n"+base)
		addr := g.Addr().String()
		_, port, _ := net.SplitHostPort(addr)
		for host, want := range map[string]int{
			addr: 200, "localhost:" + port: 200, "attacker.example:" + port: 421, "attacker.example": 421,
		} {
			if got := ask(t, addr, host, ""); got != want {
				t.Errorf("Host %q: %d, want %d", host, got, want)
			}
		}
		if got := ask(t, addr, addr, "Origin: https://attacker.example\r\n"); got != 403 {
			t.Errorf("foreign Origin: %d, want 403", got)
		}
	})
	t.Run("server.hosts", func(t *testing.T) {
		g, _ := startGateway(t, "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\nhosts = [\"scgate.internal\"]\n"+base)
		addr := g.Addr().String()
		if got := ask(t, addr, "scgate.internal", ""); got != 200 {
			t.Errorf("a listed host: %d", got)
		}
		if got := ask(t, addr, addr, ""); got != 421 {
			t.Errorf("the address, not listed: %d, want 421", got)
		}
	})
}

// TestCheckWarnsAboutAnyHost: check warns when a gateway reachable from
// the network answers any Host, and not otherwise; a bad hosts entry is an
// error at its line.
func TestCheckWarnsAboutAnyHost(t *testing.T) {
	base := "[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n"
	for _, c := range []struct {
		server string
		warn   bool
	}{
		{"[server]\nlisten = \"0.0.0.0:8080\"\n", true},
		{"[server]\nlisten = \":8080\"\n", true},
		{"[server]\nlisten = \"0.0.0.0:8080\"\nhosts = [\"scgate.radio.svc:8080\"]\n", false},
		{"[server]\nlisten = \"127.0.0.1:8080\"\n", false},
		{"", false}, // the default listen address is loopback
	} {
		code, _, errOut := run(t, "check", "--config", writeConfig(t, base+c.server))
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", c.server, code, errOut)
		}
		if got := strings.Contains(errOut, "server.hosts is not set"); got != c.warn {
			t.Errorf("%q: warned %v, want %v: %s", c.server, got, c.warn, errOut)
		}
	}
	code, _, errOut := run(t, "check", "--config", writeConfig(t, base+"[server]\nhosts = [\"ok.example\", \"https://scgate.example/\"]\n"))
	if code != exitInvalid || !strings.Contains(errOut, "config.toml:8: server.hosts: entry 2") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
