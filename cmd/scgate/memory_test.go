package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const memKey = "MemoryK1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

// largePage is a history page of about size bytes whose next and previous
// links are on linkOrigin and whose items' URLs (covers, and a "next" field
// that is not the envelope's) are on itemOrigin.
func largePage(size int, linkOrigin, itemOrigin string) []byte {
	var b bytes.Buffer
	b.Grow(size + 512)
	fmt.Fprintf(&b, `{"count":100000,"next":"%s/api/v2/history/?limit=20000&offset=40000&server=1","previous":"%s/api/v2/history/?limit=20000&server=1","results":[`, linkOrigin, linkOrigin)
	for i := 0; b.Len() < size-400; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"author":"A \"quoted\" {name}","title":"T [%d]","img_url":"%s/media/tracks/trackImage%d.jpg","next":"%s/inner/%d"}`,
			i, i, itemOrigin, i, itemOrigin, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// TestSlowReadersOfLargePagesKeepRSSSmall runs the binary, built without the
// race detector so that its memory is what users see, and has 64 callers ask
// for paginated answers of almost 4 MiB, read the first bytes and stall until
// all 64 are in flight, then read them whole. The gateway's peak RSS stays
// under 80 MB (a gateway that read each answer whole to rewrite it peaks
// above 300 MB), and every answer is byte for byte the broadcaster's, with
// only its top-level next and previous links on the gateway.
func TestSlowReadersOfLargePagesKeepRSSSmall(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the gateway's peak RSS from /proc")
	}
	const (
		callers = 64
		size    = 4<<20 - 4096 // under 4 MiB, the size that used to be read whole
		limitMB = 80
	)
	upSrv := httptest.NewUnstartedServer(nil)
	upOrigin := "http://" + upSrv.Listener.Addr().String()
	page := largePage(size, upOrigin, upOrigin)
	var served atomic.Int32
	upSrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	})
	upSrv.Start()
	defer upSrv.Close()

	cfg := writeProcessConfig(t, upSrv.URL, "", "[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \""+memKey+"\"\n")
	p := startScgate(t, buildScgateRace(t, false), cfg)
	gwAddr := strings.TrimPrefix(p.base, "http://")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("upstream served %d; scgate's log:\n%s", served.Load(), p.stderr())
		}
	})
	want := largePage(size, p.base, upOrigin)

	var started atomic.Int32
	proceed := make(chan struct{})
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			errs <- slowRead(gwAddr, want, &started, proceed)
		})
	}
	released := false
	defer func() {
		if !released {
			close(proceed)
		}
		wg.Wait()
	}()
	// Polled rather than waited for: a gateway that holds the answers may
	// take long to send their first bytes, and its RSS tells why.
	deadline := time.Now().Add(60 * time.Second)
	for started.Load()+int32(len(errs)) < callers {
		if peak, _ := procMemory(t, p.cmd.Process.Pid); peak > limitMB*1e6 {
			t.Fatalf("the gateway's RSS reached %.1f MB with %d answers in flight (%d of them started); the bound is %d MB",
				float64(peak)/1e6, callers, started.Load(), limitMB)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers received the start of their answer within 60 s", started.Load(), callers)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	close(proceed)
	released = true
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Error(err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d answers were wrong", failed, callers)
	}
	peak, now := procMemory(t, p.cmd.Process.Pid)
	t.Logf("%d answers of %d bytes through the gateway (upstream served %d): gateway RSS peak %.1f MB, now %.1f MB",
		callers, len(page), served.Load(), float64(peak)/1e6, float64(now)/1e6)
	if peak > limitMB*1e6 {
		t.Fatalf("the gateway's RSS peaked at %.1f MB with %d slow readers; the bound is %d MB", float64(peak)/1e6, callers, limitMB)
	}
}

// slowRead asks for the page over a connection with a small receive window,
// checks the first bytes, waits for proceed, then checks the rest against
// want and that nothing follows.
func slowRead(addr string, want []byte, started *atomic.Int32, proceed <-chan struct{}) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	if _, err := io.WriteString(conn, "GET /api/v2/history/?limit=20000&offset=20000&server=1 HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		return err
	}
	// The connection's close ends the body: no draining of a wrong answer.
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	buf := make([]byte, 32<<10)
	first := buf[:4096]
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		return fmt.Errorf("the first bytes: %w", err)
	}
	if !bytes.Equal(first, want[:len(first)]) {
		return fmt.Errorf("the answer starts %q, want %q", first[:200], want[:200])
	}
	started.Add(1)
	<-proceed
	off := len(first)
	for {
		n, err := resp.Body.Read(buf)
		if off+n > len(want) || !bytes.Equal(buf[:n], want[off:off+n]) {
			return fmt.Errorf("the answer differs from byte %d on (or is longer than %d bytes)", off, len(want))
		}
		off += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", off, err)
		}
	}
	if off != len(want) {
		return fmt.Errorf("the answer ended after %d of %d bytes", off, len(want))
	}
	return nil
}

// procMemory returns a process's peak and current RSS in bytes (VmHWM, VmRSS).
func procMemory(t *testing.T, pid int) (peak, now int64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, _ := strings.Cut(line, ":")
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch {
		case err != nil:
		case name == "VmHWM":
			peak = kb << 10
		case name == "VmRSS":
			now = kb << 10
		}
	}
	if peak == 0 {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	return peak, now
}
