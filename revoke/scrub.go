package revoke

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"sort"
	"strings"
)

// redacted replaces every form of a secret Scrub takes out.
const redacted = "[redacted]"

// Scrub returns text with the secrets replaced by "[redacted]": each secret
// verbatim, URL-escaped (query and path), JSON-escaped (once, twice, with
// and without HTML escaping), and every run of at least 8 of its characters
// that no escaping changes (so a secret quoted by a server in an encoding
// not listed here still loses its bulk), also when an excerpt's trailing
// "…" cut a form short after at least 4 of its bytes. Empty secrets are
// ignored.
func Scrub(text string, secrets ...string) string {
	for _, s := range secrets {
		for _, v := range variants(s) {
			text = strings.ReplaceAll(text, v, redacted)
			if head, ok := strings.CutSuffix(text, "…"); ok {
				for n := len(v) - 1; n >= 4; n-- {
					if strings.HasSuffix(head, v[:n]) {
						text = head[:len(head)-n] + redacted + "…"
						break
					}
				}
			}
		}
	}
	return text
}

// ScrubError returns err with Scrub applied to its message, or err itself
// (keeping its chain for errors.Is and errors.As) when the message held no
// secret; nil stays nil.
func ScrubError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := Scrub(msg, secrets...)
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// variants lists the forms of secret Scrub removes, longest first.
func variants(secret string) []string {
	if secret == "" {
		return nil
	}
	j, _ := json.Marshal(secret)
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	enc.Encode(secret)
	jj, _ := json.Marshal(string(j))
	v := []string{
		string(jj[3 : len(jj)-3]), secret, url.QueryEscape(secret), url.PathEscape(secret),
		string(j[1 : len(j)-1]), strings.TrimSuffix(raw.String(), "\n")[1 : raw.Len()-2],
	}
	safe := func(r rune) bool {
		return r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.~", r))
	}
	for _, run := range strings.FieldsFunc(secret, func(r rune) bool { return !safe(r) }) {
		if len(run) >= 8 && run != secret {
			v = append(v, run)
		}
	}
	sort.SliceStable(v, func(i, k int) bool { return len(v[i]) > len(v[k]) })
	return v
}
