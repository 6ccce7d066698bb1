package proxy

import (
	"bytes"
	"net/http"
	"strconv"
)

// Request framing that two HTTP parsers can read differently is how request
// smuggling works: a load balancer that frames by Content-Length and scgate,
// which (as net/http does) lets Transfer-Encoding win, would disagree about
// where a request ends, and the bytes in between would become a request of
// their own, sent with the vault key. net/http resolves such requests before
// a handler sees them (it drops the Content-Length, ignores Transfer-Encoding
// on HTTP/1.0, joins folded lines), so the evidence is gone by then.
// inspector reads the header block of every HTTP/1 request as it arrives on
// the connection, and only the framing lines of it.

// framingKind is what the inspector decided about one request.
type framingKind uint8

const (
	// framingUnknown: no verdict (the connection is not inspected, or the
	// request was not among those inspected). A gateway refuses it.
	framingUnknown framingKind = iota
	// framingClean: framed by one Content-Length, or without a body; the
	// connection may carry another request.
	framingClean
	// framingLast: a chunked body, whose end the inspector does not follow,
	// so inspection ends and the connection must close after the answer.
	framingLast
	// framingRefused: ambiguous or not understood. Nothing after its header
	// block is handed to the HTTP server; it is refused and the connection
	// closed.
	framingRefused
)

// framingVerdict is the decision for one request; reason (a fixed sentence,
// safe to send) says why it was refused.
type framingVerdict struct {
	kind   framingKind
	reason string
}

const (
	// maxPendingVerdicts bounds the verdicts of requests read ahead of the
	// server (pipelining); net/http reads ahead at most its 4 KiB buffer.
	maxPendingVerdicts = 256
	// keptLineBuffer is the largest line buffer kept between header blocks.
	keptLineBuffer = 4 << 10
)

type inspectState uint8

const (
	inHeader  inspectState = iota // reading a header block
	inBody                        // skipping a Content-Length body
	inOpaque                      // after a chunked request: bytes pass unread
	inStopped                     // after a refused request: nothing more passes
)

// inspector follows the request framing of one HTTP/1 connection. It is fed
// the bytes in the order the server reads them and never changes them; it
// only says how many of them may be handed on. Memory: one line buffer of at
// most limit bytes while a header block is read, and a bounded verdict queue.
type inspector struct {
	limit    int // longest header block, as net/http counts it (MaxHeaderBytes + 4096)
	state    inspectState
	line     []byte
	block    int   // bytes of the current header block so far
	remain   int64 // body bytes left to skip (inBody)
	skipCRLF int   // leading CR/LF bytes net/http discards after a POST
	lastPOST bool
	cur      blockFacts
	verdicts []framingVerdict
}

// blockFacts are the framing facts of one header block.
type blockFacts struct {
	requestLine bool // the request line was read
	post        bool
	http11      bool // HTTP/1.1 or later minor version
	bad         bool // a line net/http refuses anyway
	clCount     int
	clFirst     string
	clDiffer    bool
	teCount     int
	teValue     string
	folded      bool // a framing line continued on a folded line
	prevFraming bool // the last header line was Content-Length or Transfer-Encoding
}

func newInspector(limit int) *inspector {
	return &inspector{limit: limit}
}

// feed inspects p, the next bytes of the connection, and returns how many of
// them may be handed to the HTTP server: all of them, except after a refused
// request's header block, past which nothing is ever handed on.
func (in *inspector) feed(p []byte) int {
	i := 0
	for i < len(p) {
		switch in.state {
		case inStopped:
			return i
		case inOpaque:
			return len(p)
		case inBody:
			k := min(int64(len(p)-i), in.remain)
			i += int(k)
			in.remain -= k
			if in.remain == 0 {
				in.startBlock()
			}
		case inHeader:
			if in.skipCRLF > 0 {
				if c := p[i]; c == '\r' || c == '\n' {
					in.skipCRLF--
					i++
					continue
				}
				in.skipCRLF = 0
			}
			// The rest of the line, or of p.
			end := len(p)
			if j := bytes.IndexByte(p[i:], '\n'); j >= 0 {
				end = i + j + 1
			}
			if in.block+end-i > in.limit {
				// net/http answers 431 to such a block; pass nothing more.
				i += in.limit - in.block + 1
				in.decide(framingVerdict{framingRefused, "the request header is too large"})
				return i
			}
			in.block += end - i
			if p[end-1] != '\n' {
				in.line = append(in.line, p[i:end]...)
				i = end
				continue
			}
			in.line = append(in.line, p[i:end-1]...)
			i = end
			if in.endLine() && in.state == inStopped {
				return i
			}
		}
	}
	return len(p)
}

// startBlock prepares for the next request's header block.
func (in *inspector) startBlock() {
	in.state = inHeader
	in.block = 0
	in.cur = blockFacts{}
	if cap(in.line) > keptLineBuffer {
		in.line = nil
	}
	in.line = in.line[:0]
	// net/http tolerates up to 4 stray CR/LF bytes after a POST body
	// (old clients sent one); it discards them, and so must we.
	if in.lastPOST {
		in.skipCRLF = 4
	}
}

// endLine handles the line in in.line; it reports whether the block ended.
func (in *inspector) endLine() bool {
	line := in.line
	in.line = in.line[:0]
	line = bytes.TrimSuffix(line, []byte{'\r'})
	f := &in.cur
	if !f.requestLine {
		f.requestLine = true
		in.requestLine(line)
		if len(line) == 0 {
			in.finishBlock()
			return true
		}
		return false
	}
	if len(line) == 0 {
		in.finishBlock()
		return true
	}
	if line[0] == ' ' || line[0] == '\t' {
		// An obsolete line folding: net/http joins it to the line before.
		if f.prevFraming {
			f.folded = true
		}
		return false
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok {
		f.bad = true
		f.prevFraming = false
		return false
	}
	value = bytes.Trim(value, " \t")
	switch {
	case asciiEqualFold(name, "Content-Length"):
		f.clCount++
		if f.clCount == 1 {
			f.clFirst = string(value)
		} else if string(value) != f.clFirst {
			f.clDiffer = true
		}
		f.prevFraming = true
	case asciiEqualFold(name, "Transfer-Encoding"):
		f.teCount++
		f.teValue = string(value)
		f.prevFraming = true
	default:
		f.prevFraming = false
	}
	return false
}

// requestLine reads the method and protocol version as net/http does.
func (in *inspector) requestLine(line []byte) {
	f := &in.cur
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	_, proto, ok2 := bytes.Cut(rest, []byte{' '})
	major, minor, ok3 := http.ParseHTTPVersion(string(proto))
	if !ok1 || !ok2 || !ok3 || major != 1 {
		f.bad = true
		return
	}
	f.post = string(method) == "POST"
	f.http11 = minor >= 1
}

// finishBlock decides about the block just read and sets up what follows.
func (in *inspector) finishBlock() {
	f := in.cur
	in.lastPOST = f.post
	var n int64
	v := framingVerdict{kind: framingClean}
	switch {
	case f.bad:
		v = framingVerdict{framingRefused, "the request line or a header line is malformed"}
	case f.folded:
		v = framingVerdict{framingRefused, "a Content-Length or Transfer-Encoding header is folded onto the next line"}
	case f.teCount > 0 && f.clCount > 0:
		v = framingVerdict{framingRefused, "the request has both Content-Length and Transfer-Encoding"}
	case f.teCount > 0 && !f.http11:
		v = framingVerdict{framingRefused, "the request has Transfer-Encoding, which HTTP/1.0 does not have"}
	case f.teCount > 0:
		// net/http itself refuses anything but one "chunked" (501).
		v = framingVerdict{kind: framingLast}
	case f.clCount > 0:
		var err error
		n, err = strconv.ParseInt(f.clFirst, 10, 64)
		if f.clDiffer || err != nil || n < 0 || !allDigits(f.clFirst) {
			v = framingVerdict{framingRefused, "the request has an invalid Content-Length"}
		}
	}
	in.decide(v)
	if v.kind == framingClean && n > 0 {
		in.state, in.remain = inBody, n
	}
}

// decide queues v and moves to the state it implies.
func (in *inspector) decide(v framingVerdict) {
	if len(in.verdicts) >= maxPendingVerdicts {
		v = framingVerdict{framingRefused, "too many pipelined requests"}
	}
	in.verdicts = append(in.verdicts, v)
	switch v.kind {
	case framingRefused:
		in.state = inStopped
		in.line = nil
	case framingLast:
		in.state = inOpaque
		in.line = nil
	default:
		in.startBlock()
	}
}

// next hands out the verdict of the next request the server serves.
func (in *inspector) next() framingVerdict {
	if len(in.verdicts) == 0 {
		return framingVerdict{framingUnknown, "the request was not inspected"}
	}
	// Shifted down rather than resliced, so that the backing array is kept
	// for the connection's next request instead of allocated again.
	v := in.verdicts[0]
	n := copy(in.verdicts, in.verdicts[1:])
	in.verdicts[n] = framingVerdict{}
	in.verdicts = in.verdicts[:n]
	return v
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}
