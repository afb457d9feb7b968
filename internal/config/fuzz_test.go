package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: whatever the file holds, Parse never panics; it returns a
// valid config or an error that names the file; an accepted config prints
// (Redacted) and parses back.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("kafka: {brokers: [a:1], topic: t}\n"))
	f.Add([]byte("ingest:\n  batch_size: 1e309\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", nil)
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a config", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "fuzz.yaml") && !strings.Contains(msg, ".") {
				t.Fatalf("error names neither the file nor a key: %q", msg)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate refuses: %v", err)
		}
		out, err := c.Redacted()
		if err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		if _, err := Parse(out, "fuzz.yaml", nil); err != nil {
			t.Fatalf("the printed config does not parse back: %v\n%s", err, out)
		}
	})
}
