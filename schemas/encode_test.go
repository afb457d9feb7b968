package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAppendQuotedEveryByte puts every byte value at every position of a
// string longer than the 8-byte fast path and checks the quoted form is
// JSON that means the same string (invalid UTF-8 as U+FFFD).
func TestAppendQuotedEveryByte(t *testing.T) {
	for c := range 256 {
		for pos := range 19 {
			b := []byte("abcdefghijklmnopqrs")
			b[pos] = byte(c)
			s := string(b)
			out := appendQuoted(nil, s)
			var got string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("byte %#x at %d: %s is not a JSON string: %v", c, pos, out, err)
			}
			if want := strings.ToValidUTF8(s, "\uFFFD"); got != want {
				t.Fatalf("byte %#x at %d: %s decodes to %q, want %q", c, pos, out, got, want)
			}
		}
	}
}
