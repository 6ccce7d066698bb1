package identity

import (
	"errors"
	"strings"
)

// xfccElement is one element of an X-Forwarded-Client-Cert header: the
// client certificate one proxy saw, as key=value pairs ("By", "Hash", "URI",
// "DNS", "Subject", ...). Keys are case-insensitive; a key may repeat (DNS).
type xfccElement []xfccPair

type xfccPair struct{ key, value string }

// get returns the value of the first pair named key.
func (e xfccElement) get(key string) (string, bool) {
	for _, p := range e {
		if strings.EqualFold(p.key, key) {
			return p.value, true
		}
	}
	return "", false
}

// maxXFCCLen bounds the header parsed: a certificate chain can be long, but
// an identity header of megabytes is an attack, not a proxy.
const maxXFCCLen = 64 << 10

var (
	errXFCCTooLong  = errors.New("X-Forwarded-Client-Cert is longer than 64 KiB")
	errXFCCSyntax   = errors.New("X-Forwarded-Client-Cert is malformed: want elements of key=value pairs separated by ';', elements separated by ','")
	errXFCCUnclosed = errors.New("X-Forwarded-Client-Cert has an unterminated quoted value")
)

// parseXFCC splits an X-Forwarded-Client-Cert value, as Envoy and Istio
// write it, into its elements: elements are separated by ',', pairs by ';',
// key from value by the first '='. A value may be double-quoted, and then
// holds ',', ';' and '=' literally and '\"' for a quote; unquoted, it ends at
// the next separator. Empty elements and pairs are refused, as is a key that
// is empty or not a token: a proxy never writes them.
func parseXFCC(s string) ([]xfccElement, error) {
	if len(s) > maxXFCCLen {
		return nil, errXFCCTooLong
	}
	var elems []xfccElement
	var cur xfccElement
	i := 0
	for {
		// key
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ';' && s[i] != ',' {
			i++
		}
		key := strings.TrimSpace(s[start:i])
		if i >= len(s) || s[i] != '=' || !isToken(key) {
			return nil, errXFCCSyntax
		}
		i++ // '='
		// value
		var value string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, errXFCCUnclosed
			}
			value = b.String()
			// only spaces may follow a closing quote before the separator
			for i < len(s) && s[i] == ' ' {
				i++
			}
		} else {
			start = i
			for i < len(s) && s[i] != ';' && s[i] != ',' {
				if s[i] == '"' || s[i] == '=' {
					return nil, errXFCCSyntax
				}
				i++
			}
			value = strings.TrimSpace(s[start:i])
		}
		cur = append(cur, xfccPair{key: key, value: value})
		if i >= len(s) {
			return append(elems, cur), nil
		}
		switch s[i] {
		case ';':
		case ',':
			elems = append(elems, cur)
			cur = nil
		default:
			return nil, errXFCCSyntax
		}
		i++
	}
}

// isToken reports whether s is a non-empty run of letters, digits, '-' and
// '_', which covers every key Envoy writes.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
