package schemas

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as one v1 JSON object to dst and returns the extended
// buffer.
//
// id, type and time are always written; every other field only when it is
// present (non-zero), family_id only when it differs from session_id,
// latency_ms when HasLatency, and sample_rate when it is neither 0 (unset)
// nor 1. Fields follow FieldNames order and attributes keep their order, so
// for a valid event Decode(AppendJSON(e)) equals e. Strings are escaped as
// JSON requires (plus U+2028 and U+2029); invalid UTF-8 becomes U+FFFD.
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendQuoted(dst, e.ID)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, e.Type.String()...)
	dst = append(dst, `","time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = appendString(dst, `,"source":`, e.Source)
	dst = appendString(dst, `,"tenant":`, e.Tenant)
	dst = appendString(dst, `,"user_id":`, e.UserID)
	dst = appendString(dst, `,"session_id":`, e.SessionID)
	if e.FamilyID != e.SessionID {
		dst = appendString(dst, `,"family_id":`, e.FamilyID)
	}
	dst = appendString(dst, `,"token_id":`, e.TokenID)
	dst = appendString(dst, `,"parent_token_id":`, e.ParentTokenID)
	dst = appendString(dst, `,"ip":`, e.IP)
	dst = appendString(dst, `,"user_agent":`, e.UserAgent)
	dst = appendString(dst, `,"device_id":`, e.DeviceID)
	dst = appendString(dst, `,"country":`, e.Country)
	if e.ASN != 0 {
		dst = append(dst, `,"asn":`...)
		dst = strconv.AppendUint(dst, uint64(e.ASN), 10)
	}
	dst = appendString(dst, `,"outcome":`, e.Outcome.String())
	dst = appendString(dst, `,"reason":`, e.Reason)
	dst = appendString(dst, `,"actor":`, e.Actor.String())
	if e.HasLatency {
		dst = append(dst, `,"latency_ms":`...)
		dst = appendFloat(dst, e.LatencyMS)
	}
	dst = appendString(dst, `,"auth_method":`, e.AuthMethod)
	if e.SampleRate != 0 && e.SampleRate != 1 {
		dst = append(dst, `,"sample_rate":`...)
		dst = appendFloat(dst, e.SampleRate)
	}
	if len(e.Attributes) > 0 {
		dst = append(dst, `,"attributes":{`...)
		for i, a := range e.Attributes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, a.Key)
			dst = append(dst, ':')
			dst = appendQuoted(dst, a.Value)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendString appends prefix and the quoted s unless s is empty.
func appendString(dst []byte, prefix, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, prefix...)
	return appendQuoted(dst, s)
}

// appendFloat appends f as a JSON number in its shortest exact form, like
// encoding/json; NaN and ±Inf, which JSON cannot carry, become null.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' { // 1e-07 → 1e-7
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// plain8 reports whether the 8 bytes of b need no escaping: none is a
// control character, '"', '\\' or non-ASCII. The SWAR tests may flag a
// byte that is fine (after a borrow), never miss one that is not; a flagged
// word is then looked at byte by byte.
func plain8(b string) bool {
	w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	below20 := (w - ones*0x20) & ^w & highs
	return (below20 | zero(w^(ones*'"')) | zero(w^(ones*'\\')) | w&highs) == 0
}

// appendQuoted appends s as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain ASCII bytes at a time: most strings need no escaping.
		if i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
