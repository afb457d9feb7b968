// Package pseudonym replaces identifiers (user ids, session and family
// ids, IP addresses) with keyed pseudonyms before vigil stores them: the
// same identifier always gives the same pseudonym under one key, so
// timelines, counts and joins work on stored data, while the clear value
// cannot be recovered, nor guessed from a list of candidates, without the
// key.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Prefix starts every pseudonym, so that one is never taken for a clear
// identifier.
const Prefix = "ps_"

// minKeyBytes is the shortest key accepted: 128 bits.
const minKeyBytes = 16

// Key pseudonymizes identifiers with HMAC-SHA-256. The zero Key (nil) is
// off: Of returns its input. A Key is safe for concurrent use.
type Key []byte

// Load reads a key file: its content, without a trailing newline, is the
// key; it must be at least 16 bytes. key names the config key in errors,
// which never quote the file's content.
func Load(key, path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	k := strings.TrimRight(string(b), "\r\n")
	if len(k) < minKeyBytes {
		return nil, fmt.Errorf("%s: %s holds %d bytes; a pseudonymization key needs at least %d (e.g. head -c 32 /dev/urandom | base64)", key, path, len(k), minKeyBytes)
	}
	return Key(k), nil
}

// Enabled reports whether k pseudonymizes.
func (k Key) Enabled() bool { return len(k) > 0 }

// Of returns the pseudonym of id: Prefix and the first 128 bits of
// HMAC-SHA-256(k, id) in hex. The empty id, a value that already is a
// pseudonym, and any id under the zero Key are returned unchanged.
func (k Key) Of(id string) string {
	if len(k) == 0 || id == "" || strings.HasPrefix(id, Prefix) {
		return id
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id))
	var sum [sha256.Size]byte
	return Prefix + hex.EncodeToString(m.Sum(sum[:0])[:16])
}
