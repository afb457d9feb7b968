package pseudonym

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	k, off := Key("0123456789abcdef0123456789abcdef"), Key(nil)
	other := Key("fedcba9876543210fedcba9876543210")
	a, b := k.Of("alice"), k.Of("bob")
	switch {
	case !strings.HasPrefix(a, Prefix) || len(a) != len(Prefix)+32:
		t.Errorf("Of(alice) = %q: want %s and 32 hex digits", a, Prefix)
	case a == b:
		t.Error("two ids, one pseudonym")
	case k.Of("alice") != a:
		t.Error("not deterministic")
	case other.Of("alice") == a:
		t.Error("another key gives the same pseudonym")
	case k.Of("") != "":
		t.Error("the empty id is pseudonymized")
	case k.Of(a) != a:
		t.Error("a pseudonym is pseudonymized again")
	case off.Of("alice") != "alice" || off.Enabled() || !k.Enabled():
		t.Error("the zero key is not off")
	}
	// A known answer, so that the scheme never changes unnoticed (stored
	// pseudonyms would stop matching): HMAC-SHA-256("0123…", "alice").
	if got, want := k.Of("alice"), "ps_433deb45467e4e53dbaba594c88bc3a2"; got != want {
		t.Errorf("Of(alice) = %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k, err := Load("privacy.key_file", write("good", "0123456789abcdef-key\n"))
	if err != nil || string(k) != "0123456789abcdef-key" {
		t.Errorf("Load = %q, %v", k, err)
	}
	_, err = Load("privacy.key_file", write("short", "tiny-secret\n"))
	if err == nil || !strings.Contains(err.Error(), "privacy.key_file") || strings.Contains(err.Error(), "tiny-secret") {
		t.Errorf("a short key: %v (must name the key, never the content)", err)
	}
	if _, err := Load("privacy.key_file", filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "privacy.key_file") {
		t.Errorf("a missing file: %v", err)
	}
}
