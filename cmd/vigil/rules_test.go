package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesGenerate: `vigil rules generate` writes exactly the committed
// alerts/rules/slos.yaml for the seed SLOs and alerts/rules/pipeline.yaml,
// and names a bad SLO file's problem.
func TestRulesGenerate(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, nil, "rules", "generate", "--out", dir)
	if err != nil || !strings.Contains(out, "8 rule groups for 4 of 5 SLOs") || !strings.Contains(out, "pipeline.yaml: 9 alerts on the pipeline itself") {
		t.Fatalf("rules generate: %v\n%s", err, out)
	}
	same := func(file, refresh string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile("../../alerts/rules/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("vigil rules generate differs from alerts/rules/%s (%s refreshes it)", file, refresh)
		}
	}
	same("slos.yaml", "go test ./slo -update")
	same("pipeline.yaml", "go test ./alerts -run TestPipelineRulesAreCommitted -update")

	custom := t.TempDir()
	if _, _, err := run(t, nil, "rules", "generate", "--out", custom, "--job", "vigil-prod", "--runbook-base", "https://wiki.example.com/vigil"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(custom, "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`absent(up{job="vigil-prod"})`, "runbook_url: https://wiki.example.com/vigil/VigilPipelineDown.md"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("pipeline.yaml with --job and --runbook-base lacks %q", want)
		}
	}
	if _, _, err := run(t, nil, "rules", "generate", "--out", custom, "--job", ""); exitCode(err) != 2 {
		t.Errorf("an empty --job: %v, want a usage error", err)
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
