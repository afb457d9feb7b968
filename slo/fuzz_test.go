package slo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// FuzzParse: whatever the spec file holds, Parse never panics; it returns
// valid specs or an error naming the file; accepted specs make rules whose
// PromQL the real parser accepts.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("slos: []\n"))
	f.Add([]byte("slos:\n- name: x\n  objective: 1e-320\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := Validate(specs); err != nil {
			t.Fatalf("Parse accepted specs Validate refuses: %v", err)
		}
		groups, err := Rules(specs, RuleOptions{MinEvents: 10})
		if err != nil {
			return // a spec may be valid yet have no Prometheus rule form; that is an error, not a crash
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if _, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr); err != nil {
					t.Fatalf("rule %s%s: %v\n%s", r.Record, r.Alert, err, r.Expr)
				}
			}
		}
	})
}
