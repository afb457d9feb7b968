package schemas

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixedNow is "now" for every test decoder: the corpus is dated before it.
var fixedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testDecoder() *Decoder {
	return NewDecoder(DecoderConfig{MaxFutureSkew: DefaultMaxFutureSkew, Now: func() time.Time { return fixedNow }})
}

type corpusCase struct {
	name string // file name without .json, e.g. "bad_ip__zone"
	data []byte
	want Reason // "" for a good event
}

const corpusDir = "testdata/corpus"

func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	var out []corpusCase
	for _, dir := range []string{"good", "bad"} {
		files, err := filepath.Glob(filepath.Join(corpusDir, dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no corpus files in %s/%s", corpusDir, dir)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c := corpusCase{name: strings.TrimSuffix(filepath.Base(f), ".json"), data: data}
			if dir == "bad" {
				prefix, _, ok := strings.Cut(c.name, "__")
				if !ok || !slices.Contains(Reasons(), Reason(prefix)) {
					t.Fatalf("%s: bad corpus file names must start with <reason>__", f)
				}
				c.want = Reason(prefix)
			}
			out = append(out, c)
		}
	}
	return out
}

// eventsEqual compares two events field by field (time by instant and location).
func eventsEqual(a, b *Event) bool {
	if !a.Time.Equal(b.Time) || a.Time.Location() != b.Time.Location() {
		return false
	}
	x, y := *a, *b
	x.Time, y.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}
