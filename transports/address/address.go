// Package address maps legacy network addresses to JID localparts and back.
//
// A legacy address such as "alice@example.com" becomes the localpart
// "alice%example.com": every "@" is written "%". Any other byte that could not
// stand for itself in a JID localpart, or that would not survive the
// server's normalisation (upper case, non-ASCII, "%" and the escape character
// itself), is written as a backslash and two lower-case hex digits ("\25" for
// "%", "\41" for "A"). The mapping is a bijection between non-empty legacy
// addresses and the localparts Encode produces: Decode accepts exactly those
// and rejects everything else, so no two legacy addresses share a JID.
//
// The escapes of the characters that XEP-0106 escapes (space, quotes, "&",
// "/", ":", "<", ">" and the backslash) are the same as XEP-0106's, so clients
// that unescape JIDs for display show those characters as they are.
package address

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLocalpart is the longest localpart, in bytes, that a JID may have (RFC 7622).
const MaxLocalpart = 1023

// Errors returned by Encode and Decode.
var (
	ErrEmpty   = errors.New("address: empty")
	ErrTooLong = errors.New("address: longer than a JID localpart may be")
)

const (
	at     = '%'
	escape = '\\'
	hex    = "0123456789abcdef"
)

// plain reports whether b stands for itself in an encoded localpart: ASCII
// that RFC 7622 allows in a localpart, that PRECIS leaves unchanged, and that
// is not one of the two characters with a meaning of their own here.
func plain(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$()*+,-.;=?[]^_`{|}~", b) >= 0
}

// Encode returns the JID localpart for a legacy address.
func Encode(legacy string) (string, error) {
	if legacy == "" {
		return "", ErrEmpty
	}
	var sb strings.Builder
	sb.Grow(len(legacy) + 8)
	for i := 0; i < len(legacy); i++ {
		b := legacy[i]
		switch {
		case b == '@':
			sb.WriteByte(at)
		case plain(b):
			sb.WriteByte(b)
		default:
			sb.WriteByte(escape)
			sb.WriteByte(hex[b>>4])
			sb.WriteByte(hex[b&0xf])
		}
	}
	if sb.Len() > MaxLocalpart {
		return "", fmt.Errorf("%w: %d bytes encoded", ErrTooLong, sb.Len())
	}
	return sb.String(), nil
}

// Decode returns the legacy address that Encode maps to localpart. It fails
// on anything Encode cannot produce.
func Decode(localpart string) (string, error) {
	if localpart == "" {
		return "", ErrEmpty
	}
	if len(localpart) > MaxLocalpart {
		return "", ErrTooLong
	}
	var sb strings.Builder
	sb.Grow(len(localpart))
	for i := 0; i < len(localpart); i++ {
		b := localpart[i]
		switch {
		case b == at:
			sb.WriteByte('@')
		case plain(b):
			sb.WriteByte(b)
		case b == escape:
			if i+2 >= len(localpart) {
				return "", fmt.Errorf("address: %q: escape at byte %d is cut short", localpart, i)
			}
			hi, lo := unhex(localpart[i+1]), unhex(localpart[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("address: %q: bad escape at byte %d", localpart, i)
			}
			v := byte(hi<<4 | lo)
			if v == '@' || plain(v) {
				return "", fmt.Errorf("address: %q: %q must not be escaped", localpart, v)
			}
			sb.WriteByte(v)
			i += 2
		default:
			return "", fmt.Errorf("address: %q: byte %d (%q) cannot appear unescaped", localpart, i, b)
		}
	}
	return sb.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}
