package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesGenerate: `vigil rules generate` writes exactly the committed
// alerts/rules/slos.yaml for the seed SLOs, and names a bad SLO file's
// problem.
func TestRulesGenerate(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, nil, "rules", "generate", "--out", dir)
	if err != nil || !strings.Contains(out, "8 rule groups for 4 of 5 SLOs") {
		t.Fatalf("rules generate: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "slos.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../alerts/rules/slos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("vigil rules generate differs from alerts/rules/slos.yaml (go test ./slo -update refreshes it)")
	}
	spec := filepath.Join(dir, "slos-spec.yaml")
	if err := os.WriteFile(spec, []byte("slos:\n  - name: x\n    objective: 99\n    window: 2h\n    sli: {enforcement: {within: 5s}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, map[string]string{"VIGIL_SLO_SPEC_FILE": spec}, "rules", "generate", "--out", dir)
	if err == nil || !strings.Contains(err.Error(), `slo "x": window: must be at least the longest alert window (3d)`) {
		t.Errorf("a bad SLO file: %v, want an error naming the SLO and the field", err)
	}
	if _, _, err := run(t, nil, "rules"); exitCode(err) != 2 {
		t.Errorf("rules without generate: %v, want a usage error", err)
	}
}
