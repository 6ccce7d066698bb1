package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// feedAll feeds raw to a fresh inspector in pieces of at most step bytes
// (0: all at once) and returns how many bytes it passed and its verdicts.
func feedAll(raw []byte, step, limit int) (int, []framingVerdict) {
	in := newInspector(limit)
	passed := 0
	for off := 0; off < len(raw); {
		end := len(raw)
		if step > 0 {
			end = min(off+step, len(raw))
		}
		n := in.feed(raw[off:end])
		passed += n
		if n < end-off {
			break
		}
		off = end
	}
	return passed, in.verdicts
}

// rawFacts reads a header block the plain way, independently of the
// inspector: does it name Content-Length, Transfer-Encoding, and is either
// continued on a folded line?
func rawFacts(block string) (cl, te, folded bool) {
	lines := strings.Split(block, "\n")
	prevFraming := false
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			folded = folded || prevFraming
			continue
		}
		name, _, _ := strings.Cut(l, ":")
		prevFraming = false
		if strings.EqualFold(name, "Content-Length") {
			cl, prevFraming = true, true
		}
		if strings.EqualFold(name, "Transfer-Encoding") {
			te, prevFraming = true, true
		}
	}
	return
}

// FuzzFramingInspector checks the properties the gateway relies on:
//   - the verdicts do not depend on how the bytes are split into reads;
//   - every request net/http parses from the bytes passed on has a verdict,
//     and the inspector agrees with net/http on where it ends (a request it
//     calls chunked is chunked to net/http, one it frames by length is not);
//   - a request it lets through (clean or last) is never ambiguous: not
//     both Content-Length and Transfer-Encoding, no Transfer-Encoding on
//     HTTP/1.0, no folded framing line;
//   - nothing is passed after a refused request's header block, so no
//     request follows it, and none follows a chunked one unread.
func FuzzFramingInspector(f *testing.F) {
	post := "POST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\n"
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		post + "Content-Length: 2\r\n\r\n{}\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
		post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /s HTTP/1.0\r\n\r\n",
		post + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
		strings.ReplaceAll(post+"Content-Length: 2\r\n\r\n{}", "\r\n", "\n") + "GET / HTTP/1.1\nHost: x\n\n",
		post + "Content-Length: 0\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		post + "content-length: 1\r\ncontent-length: 1\r\n\r\nxGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, step uint8) {
		// A small header limit too, for the refusal of an oversized block.
		for _, limit := range []int{40, 64<<10 + 4096} {
			passed, verdicts := feedAll(raw, 0, limit)
			for _, st := range []int{1, int(step)} {
				p2, v2 := feedAll(raw, st, limit)
				if p2 != passed || !slices.Equal(v2, verdicts) {
					t.Fatalf("limit %d, split every %d bytes: passed %d, %v; at once %d, %v", limit, st, p2, v2, passed, verdicts)
				}
			}
		}
		passed, verdicts := feedAll(raw, 0, 64<<10+4096)
		for _, st := range []int{1, int(step)} {
			p2, v2 := feedAll(raw, st, 64<<10+4096)
			if p2 != passed || len(v2) != len(verdicts) {
				t.Fatalf("split every %d bytes: passed %d, %d verdicts; at once %d, %d", st, p2, len(v2), passed, len(verdicts))
			}
			for i := range v2 {
				if v2[i] != verdicts[i] {
					t.Fatalf("split every %d bytes: verdict %d is %v, at once %v", st, i, v2[i], verdicts[i])
				}
			}
		}
		for i, v := range verdicts {
			if v.kind != framingClean && i != len(verdicts)-1 {
				t.Fatalf("verdict %d (%v) is not the last, yet inspection went on", i, v)
			}
		}
		// Parse what was passed on as net/http's server does.
		src := bytes.NewReader(raw[:passed])
		br := bufio.NewReader(src)
		lastPOST := false
		for k := 0; ; k++ {
			if lastPOST {
				peek, _ := br.Peek(4)
				n := 0
				for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
					n++
				}
				_, _ = br.Discard(n)
			}
			start := passed - src.Len() - br.Buffered()
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.ProtoMajor != 1 {
				return // net/http's server refuses it
			}
			lastPOST = req.Method == "POST"
			if k >= len(verdicts) {
				t.Fatalf("net/http parsed request %d (%s %s) from the passed bytes, which has no verdict", k, req.Method, req.RequestURI)
			}
			v := verdicts[k]
			block := string(raw[start:])
			if end := strings.Index(block, "\n\r\n"); end >= 0 {
				block = block[:end]
			}
			if e := strings.Index(block, "\n\n"); e >= 0 {
				block = block[:e]
			}
			cl, te, folded := rawFacts(block)
			chunked := len(req.TransferEncoding) > 0
			switch v.kind {
			case framingClean, framingLast:
				if (cl && te) || (te && req.ProtoMinor == 0) || folded {
					t.Fatalf("request %d let through (%v) though ambiguous: %q", k, v, block)
				}
				if chunked != (v.kind == framingLast) {
					t.Fatalf("request %d: the inspector says %v, net/http chunked=%v: %q", k, v, chunked, block)
				}
			case framingRefused:
				// Its body was never passed on: net/http must not find a
				// request after it.
				_, _ = io.Copy(io.Discard, req.Body)
				if next, err := http.ReadRequest(br); err == nil {
					t.Fatalf("a request (%s %s) follows refused request %d", next.Method, next.RequestURI, k)
				}
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			if v.kind == framingLast {
				return
			}
		}
	})
}

// BenchmarkFramingInspector is the inspection every HTTP/1 request's bytes
// go through: a typical API request with a small JSON body.
func BenchmarkFramingInspector(b *testing.B) {
	req := []byte("POST /api/v2/playlists/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Content-Type: application/json\r\nAccept-Encoding: gzip\r\nX-Request-Id: 0123456789abcdef\r\nContent-Length: 27\r\n\r\n" +
		`{"name":"bench","server":1}`)
	in := newInspector(64<<10 + 4096)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if in.feed(req) != len(req) || in.next().kind != framingClean {
			b.Fatal("not clean")
		}
	}
}
