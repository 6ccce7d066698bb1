// Package pagelinks rewrites the top-level "next" and "previous" links of a
// JSON object while it streams through, holding a small window of the body
// rather than the body itself.
//
// A Reader copies its source byte for byte and replaces only the string
// values of "next" and "previous" keys of the outermost object. It checks
// the JSON grammar as it goes; from the first byte that is not valid JSON
// (or after the outermost value ends, or when the body does not start with
// an object) it passes every remaining byte through unchanged. Bytes are
// never dropped or reordered: a value it starts to hold (a link) is given
// back unchanged if the body ends, breaks or grows too long first.
package pagelinks

import (
	"bytes"
	"encoding/json"
	"io"
)

const (
	// BufferSize is how much of the source a Reader reads at once.
	BufferSize = 8 << 10
	// MaxLinkBytes bounds a link value (quotes and escapes included) that a
	// Reader holds to replace; a longer value passes through unchanged.
	MaxLinkBytes = 8 << 10
	// outLimit is how much output a Reader produces before it hands it on.
	outLimit = 8 << 10
	// maxDepth is encoding/json's nesting limit: deeper input is not valid
	// JSON to encoding/json either, so it is passed through unchanged.
	maxDepth = 10000
	// maxKeyBytes is the longest raw key that can decode to "previous"
	// (every character escaped as \uXXXX).
	maxKeyBytes = 6 * len("previous")
)

// Footprint is an upper bound on the bytes a Reader holds at once (its input
// and output buffers and one held link) when its replacements are at most
// maxReplacement bytes long once encoded.
func Footprint(maxReplacement int) int64 {
	return int64(BufferSize + outLimit + max(BufferSize, MaxLinkBytes, maxReplacement) + MaxLinkBytes)
}

// Options configures a Reader.
type Options struct {
	// Replace returns the new value of a top-level next or previous link
	// (decoded), or false to leave it as it is.
	Replace func(link string) (string, bool)
	// MaxReplacement bounds a replacement's JSON encoding; a longer one is not
	// made (the link stays). 0 means MaxLinkBytes.
	MaxReplacement int
	// SizeHint, when positive, is the body's length if known: a small body
	// gets buffers of its size rather than BufferSize.
	SizeHint int64
	// Release, when set, is called once when the Reader no longer holds any
	// buffer: at the end of the source, once it passes the rest through, or at
	// Close, whichever comes first.
	Release func()
}

// scanner states.
type state uint8

const (
	sBegin         state = iota // whitespace, then the outermost value
	sObjKeyOrEnd                // after '{': a key or '}'
	sObjKey                     // after ',' in an object: a key
	sColon                      // after a key: ':'
	sValue                      // a value
	sArrValueOrEnd              // after '[': a value or ']'
	sAfterValue                 // ',' or the closing bracket
	sString                     // in a string
	sEsc                        // after '\' in a string
	sHex                        // in the four digits of \uXXXX
	sNeg                        // after '-'
	sZero                       // after a leading 0
	sInt                        // in integer digits
	sDot                        // after '.'
	sFrac                       // in fraction digits
	sExp                        // after 'e' or 'E'
	sExpSign                    // after the exponent's sign
	sExpDigits                  // in exponent digits
	sLiteral                    // in true, false or null
)

// role says what the string being scanned is to the rewriter.
type role uint8

const (
	plain role = iota
	topKey
	link // a top-level next/previous value: held until it ends
)

// Reader is an io.ReadCloser that rewrites top-level pagination links of the
// JSON object read from its source. Like any reader, it is not safe for
// concurrent use.
type Reader struct {
	src  io.ReadCloser
	opts Options

	in         []byte // input; in[inPos:inEnd] not yet scanned
	inPos      int
	inEnd      int
	base       int64 // stream offset of in[0]
	out        []byte
	outPos     int
	held       []byte // the link value held so far (from earlier reads)
	holdOffset int64  // stream offset of the held value's opening quote
	err        error  // the source's error, returned once the input is used up
	pass       bool   // pass the rest through unchanged
	freed      bool

	st      state
	role    role
	hex     int // digits of \uXXXX still expected
	lit     string
	litPos  int
	depth   int
	objects []uint64 // bit i: container i is an object (else an array)
	inKey   bool     // the string being scanned is an object key
	linkKey bool     // the last top-level key was next or previous
	key     [maxKeyBytes]byte
	keyLen  int // bytes in key; maxKeyBytes+1: too long to matter

	// onSplice, in tests, sees every replacement: the stream offsets of the
	// replaced value and what replaced it.
	onSplice func(start, end int64, with []byte)
}

// NewReader returns a Reader over src.
func NewReader(src io.ReadCloser, opts Options) *Reader {
	if opts.MaxReplacement <= 0 {
		opts.MaxReplacement = MaxLinkBytes
	}
	return &Reader{src: src, opts: opts}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		if r.outPos < len(r.out) {
			n := copy(p, r.out[r.outPos:])
			r.outPos += n
			return n, nil
		}
		r.out, r.outPos = r.out[:0], 0
		if r.pass {
			if r.inPos < r.inEnd {
				n := copy(p, r.in[r.inPos:r.inEnd])
				r.inPos += n
				return n, nil
			}
			r.free()
			if r.err != nil {
				return 0, r.err
			}
			return r.src.Read(p)
		}
		if r.inPos == r.inEnd {
			if r.err != nil {
				r.free()
				return 0, r.err
			}
			if r.in == nil {
				n := BufferSize
				if h := r.opts.SizeHint; h > 0 && h < BufferSize {
					n = int(h) + 1 // one more, to see the end with the body
				}
				r.in = make([]byte, n)
				r.out = make([]byte, 0, 2*n)
			}
			r.base += int64(r.inEnd)
			n, err := r.src.Read(r.in)
			r.inPos, r.inEnd = 0, n
			r.err = err
			if n == 0 && err == nil {
				continue
			}
		}
		r.scan()
		if r.inPos == r.inEnd && r.err != nil && r.role == link {
			// The source ended inside a link: give it back as it came.
			r.out = append(r.out, r.held...)
			r.held, r.role = nil, plain
		}
	}
}

// Close closes the source and drops the buffers.
func (r *Reader) Close() error {
	r.free()
	return r.src.Close()
}

func (r *Reader) free() {
	if r.freed {
		return
	}
	r.freed = true
	r.in, r.inPos, r.inEnd = nil, 0, 0
	r.out, r.outPos, r.held = nil, 0, nil
	if r.opts.Release != nil {
		r.opts.Release()
	}
}

// scan consumes input from r.in[r.inPos:r.inEnd] into r.out until the input
// is used up or r.out has outLimit bytes.
func (r *Reader) scan() {
	in := r.in[:r.inEnd]
	// The state lives in locals while scanning, written back on the way out.
	st, role := r.st, r.role
	run := r.inPos // start of the bytes not yet copied to out (or held)
	i := r.inPos
	for ; i < len(in); i++ {
		c := in[i]
		if role == topKey && r.keyLen <= maxKeyBytes && !(st == sString && c == '"') {
			if r.keyLen < maxKeyBytes {
				r.key[r.keyLen] = c
			}
			r.keyLen++
		}
	again:
		switch st {
		case sString:
			// Fast path: ordinary string bytes.
			for c != '"' && c != '\\' && c >= 0x20 && role != topKey {
				i++
				if i == len(in) {
					goto end
				}
				c = in[i]
			}
			switch {
			case c == '"':
				st = sAfterValue
				if r.inKey {
					st, r.inKey = sColon, false
				}
				switch role {
				case topKey:
					r.linkKey = isLinkKey(r.key[:min(r.keyLen, maxKeyBytes)], r.keyLen)
					role = plain
				case link:
					if len(r.held)+i+1-run > MaxLinkBytes {
						// Too long to be a link worth holding: it passes unchanged.
						r.out = append(append(r.out, r.held...), in[run:i+1]...)
					} else {
						r.held = append(r.held, in[run:i+1]...)
						r.splice(r.held, r.holdOffset, r.base+int64(i)+1)
					}
					r.held, role = r.held[:0], plain
					run = i + 1
					if len(r.out) >= outLimit {
						i++
						goto end
					}
				}
			case c == '\\':
				st = sEsc
			case c < 0x20:
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		case sEsc:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				st = sString
			case 'u':
				st, r.hex = sHex, 4
			default:
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		case sHex:
			if !isHex(c) {
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
			if r.hex--; r.hex == 0 {
				st = sString
			}
		case sBegin:
			switch {
			case isSpace(c):
			case c == '{':
				r.push(true)
				st = sObjKeyOrEnd
			default:
				// Not an object: no top-level links to rewrite.
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		case sObjKeyOrEnd, sObjKey:
			switch {
			case isSpace(c):
			case c == '"':
				st, r.inKey = sString, true
				if r.depth == 1 {
					role, r.keyLen = topKey, 0
				}
			case c == '}' && st == sObjKeyOrEnd:
				st = sAfterValue
				if r.pop() {
					r.st, r.role = st, role
					r.done(i, run)
					return
				}
			default:
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		case sColon:
			switch {
			case isSpace(c):
			case c == ':':
				st = sValue
			default:
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		case sValue, sArrValueOrEnd:
			if isSpace(c) {
				break
			}
			if c == ']' && st == sArrValueOrEnd {
				st = sAfterValue
				if r.pop() {
					r.st, r.role = st, role
					r.done(i, run)
					return
				}
				break
			}
			top := r.depth == 1 && r.linkKey
			r.linkKey = false
			switch {
			case c == '"':
				st = sString
				if top {
					// Hold the link until it ends.
					r.out = append(r.out, in[run:i]...)
					role, r.holdOffset, r.held = link, r.base+int64(i), r.held[:0]
					run = i
				}
			case c == '{' || c == '[':
				if r.depth >= maxDepth {
					r.st, r.role = st, role
					r.doubt(i, run)
					return
				}
				r.push(c == '{')
				st = sArrValueOrEnd
				if c == '{' {
					st = sObjKeyOrEnd
				}
			case c == '-':
				st = sNeg
			case c == '0':
				st = sZero
			case c >= '1' && c <= '9':
				st = sInt
			case c == 't':
				st, r.lit, r.litPos = sLiteral, "true", 1
			case c == 'f':
				st, r.lit, r.litPos = sLiteral, "false", 1
			case c == 'n':
				st, r.lit, r.litPos = sLiteral, "null", 1
			default:
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		case sLiteral:
			if c != r.lit[r.litPos] {
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
			if r.litPos++; r.litPos == len(r.lit) {
				st = sAfterValue
			}
		case sNeg:
			switch {
			case c == '0':
				st = sZero
			case c >= '1' && c <= '9':
				st = sInt
			default:
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		case sZero, sInt, sFrac, sExpDigits:
			switch {
			case c >= '0' && c <= '9' && st != sZero:
			case c == '.' && (st == sZero || st == sInt):
				st = sDot
			case (c == 'e' || c == 'E') && st != sExpDigits:
				st = sExp
			default:
				// The number ended: c belongs to what follows it.
				st = sAfterValue
				goto again
			}
		case sDot:
			if c < '0' || c > '9' {
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
			st = sFrac
		case sExp:
			switch {
			case c == '+' || c == '-':
				st = sExpSign
			case c >= '0' && c <= '9':
				st = sExpDigits
			default:
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		case sExpSign:
			if c < '0' || c > '9' {
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
			st = sExpDigits
		case sAfterValue:
			switch {
			case isSpace(c):
			case c == ',':
				if r.isObject() {
					st = sObjKey
				} else {
					st = sValue
				}
			case c == '}' && r.isObject(), c == ']' && !r.isObject():
				if r.pop() {
					r.st, r.role = st, role
					r.done(i, run)
					return
				}
			default:
				r.st, r.role = st, role
				r.doubt(i, run)
				return
			}
		}
	}
end:
	r.inPos = i
	if role == link {
		if len(r.held)+i-run > MaxLinkBytes {
			// Too long to be a link worth holding: it passes unchanged.
			r.out = append(r.out, r.held...)
			r.out = append(r.out, in[run:i]...)
			r.held, role = r.held[:0], plain
		} else {
			r.held = append(r.held, in[run:i]...)
		}
	} else {
		r.out = append(r.out, in[run:i]...)
	}
	r.st, r.role = st, role
}

// doubt passes everything from in[i] on through unchanged.
func (r *Reader) doubt(i, run int) {
	if r.role == link {
		r.out = append(r.out, r.held...)
		r.held, r.role = nil, plain
	}
	r.out = append(r.out, r.in[run:i]...)
	r.inPos, r.pass = i, true
}

// done: the outermost object ended at in[i]; the rest passes unchanged.
func (r *Reader) done(i, run int) { r.doubt(i+1, run) }

// splice writes the replacement of the held link value, or the value as it
// came when there is none.
func (r *Reader) splice(value []byte, start, end int64) {
	var link string
	if json.Unmarshal(value, &link) == nil {
		if with, ok := r.opts.Replace(link); ok {
			if enc := encode(with); len(enc) <= r.opts.MaxReplacement {
				r.out = append(r.out, enc...)
				if r.onSplice != nil {
					r.onSplice(start, end, enc)
				}
				return
			}
		}
	}
	r.out = append(r.out, value...)
}

// encode is the JSON string of s, without the HTML escapes that
// json.Marshal adds (the broadcaster's links do not have them either).
func encode(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// isLinkKey reports whether the raw key bytes (between the quotes) decode
// to "next" or "previous".
func isLinkKey(raw []byte, n int) bool {
	if n > maxKeyBytes {
		return false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == "next" || string(raw) == "previous"
	}
	var k string
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	if json.Unmarshal(quoted, &k) != nil {
		return false
	}
	return k == "next" || k == "previous"
}

func (r *Reader) push(object bool) {
	word, bit := r.depth/64, uint(r.depth%64)
	if word == len(r.objects) {
		r.objects = append(r.objects, 0)
	}
	if object {
		r.objects[word] |= 1 << bit
	} else {
		r.objects[word] &^= 1 << bit
	}
	r.depth++
}

// pop closes the innermost container and reports whether it was the
// outermost one.
func (r *Reader) pop() bool {
	r.depth--
	return r.depth == 0
}

func (r *Reader) isObject() bool {
	d := r.depth - 1
	return r.objects[d/64]&(1<<uint(d%64)) != 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
