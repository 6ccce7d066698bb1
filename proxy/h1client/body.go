package h1client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// errBodyClosed is returned by Read after Close, as net/http does.
var errBodyClosed = errors.New("h1client: read on closed response body")

// maxChunkExtBytes bounds the chunk-extension bytes of one body, so that a
// stream of tiny chunks with long extensions cannot cost far more than its data.
const maxChunkExtBytes = 64 << 10

// body reads one response body off its connection, and gives the connection
// back to the pool (or closes it) when the body ends or is closed.
type body struct {
	ex        *exchange // nil once the connection was released
	framing   framing
	remaining int64 // framingLength: bytes left; framingChunked: bytes left in the chunk
	inChunk   bool  // framingChunked: a chunk's data (and CRLF) is being read
	extBytes  int   // framingChunked: chunk-extension bytes seen
	trailer   http.Header
	err       error
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	var n int
	var err error
	switch b.framing {
	case framingLength:
		n, err = b.readFixed(p)
	case framingChunked:
		n, err = b.readChunked(p)
	default:
		n, err = b.ex.c.br.Read(p)
		if errors.Is(err, io.EOF) {
			b.release(false)
		}
	}
	if err != nil {
		if !errors.Is(err, io.EOF) {
			err = b.ex.wrap(err)
			b.release(false)
		}
		b.err = err
	}
	return n, err
}

func (b *body) readFixed(p []byte) (int, error) {
	if b.remaining == 0 {
		b.release(true)
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.ex.c.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		b.release(true)
		return n, io.EOF
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	br := b.ex.c.br
	if !b.inChunk {
		size, err := b.chunkHeader()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := b.readTrailer(); err != nil {
				return 0, err
			}
			b.release(true)
			return 0, io.EOF
		}
		b.remaining, b.inChunk = size, true
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := br.Read(p)
	b.remaining -= int64(n)
	if errors.Is(err, io.EOF) {
		return n, io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, err
	}
	if b.remaining == 0 {
		b.inChunk = false
		lim := limits{maxBytes: 2, maxFields: 0}
		line, err := readLine(br, &lim)
		if err != nil || len(line) != 0 {
			return n, malformed("chunk data not followed by CRLF")
		}
	}
	return n, nil
}

// chunkHeader reads "chunk-size [chunk-ext] CRLF".
func (b *body) chunkHeader() (int64, error) {
	lim := limits{maxBytes: 1 << 20}
	line, err := readLine(b.ex.c.br, &lim)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return b.parseChunkSize(line)
}

func (b *body) parseChunkSize(line []byte) (int64, error) {
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if size > (1<<59)-1 {
			return 0, malformed("chunk size overflows")
		}
		size = size<<4 | int64(d)
	}
	if i == 0 {
		return 0, malformed("chunk size %q", clip(line))
	}
	ext := line[i:]
	for len(ext) > 0 && (ext[0] == ' ' || ext[0] == '\t') {
		ext = ext[1:]
	}
	if len(ext) > 0 && ext[0] != ';' {
		return 0, malformed("chunk size %q", clip(line))
	}
	if b.extBytes += len(ext); b.extBytes > maxChunkExtBytes {
		return 0, malformed("more than %d bytes of chunk extensions", maxChunkExtBytes)
	}
	return size, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// readTrailer reads the trailer section after the last chunk into the
// response's Trailer, dropping fields that would change framing.
func (b *body) readTrailer() error {
	lim := b.ex.cl.limits
	t, err := readFields(b.ex.c.br, &lim, &b.ex.c.scratch)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	for k, vs := range t {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Host", "Connection":
			continue
		}
		if b.trailer != nil {
			b.trailer[k] = vs
		}
	}
	return nil
}

// release ends the exchange: the connection returns to the pool when reuse
// holds and nothing else stands against it, else it is closed.
func (b *body) release(reuse bool) {
	if b.ex == nil {
		return
	}
	ex := b.ex
	b.ex = nil
	ex.finish(reuse)
}

func (b *body) Close() error {
	if b.ex != nil {
		b.release(false) // not read to its end: the connection cannot be reused
	}
	if b.err == nil {
		b.err = errBodyClosed
	}
	return nil
}

// String helps test failures name the framing.
func (f framing) String() string {
	return [...]string{"none", "length", "chunked", "close"}[f]
}

var _ fmt.Stringer = framing(0)
