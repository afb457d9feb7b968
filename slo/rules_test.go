package slo_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil/internal/golden"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/slo"
)

// The committed default output: operators can load it as it is, and run
// `promtool test rules alerts/rules/slos_test.yaml`.
const (
	rulesPath = "../alerts/rules/slos.yaml"
	testsPath = "../alerts/rules/slos_test.yaml"
)

func defaultRules(t *testing.T) (rulefmt.RuleGroups, []byte) {
	t.Helper()
	groups, err := slo.Rules(slo.Defaults(), slo.RuleOptions{MinEvents: 100})
	if err != nil {
		t.Fatal(err)
	}
	b, err := slo.Marshal(groups)
	if err != nil {
		t.Fatal(err)
	}
	return groups, b
}

// TestRulesAreCommitted keeps alerts/rules/ in sync with the generator.
func TestRulesAreCommitted(t *testing.T) {
	groups, b := defaultRules(t)
	golden.Check(t, rulesPath, b)
	golden.Check(t, testsPath, promtoolTests(t, groups))
}

// TestMarshalRejectsBadPromQL: the generated file goes through
// Prometheus' own loader, so a broken expression never reaches disk.
func TestMarshalRejectsBadPromQL(t *testing.T) {
	bad := rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{{Name: "g", Rules: []rulefmt.Rule{{Record: "x:y", Expr: "sum(rate(x[5m])"}}}}}
	if _, err := slo.Marshal(bad); err == nil || !strings.Contains(err.Error(), "do not load") {
		t.Errorf("Marshal of an unparsable expression: %v, want an error", err)
	}
}

// TestRulesRejectAlertsThatCannotFire: an objective so loose for its
// window that a burn threshold exceeds an error ratio of 1 is an error,
// not a silently dead alert.
func TestRulesRejectAlertsThatCannotFire(t *testing.T) {
	s := slo.Defaults()[0]
	s.Objective = 90
	_, err := slo.Rules([]slo.Spec{s}, slo.RuleOptions{})
	if err == nil || !strings.Contains(err.Error(), `slo "validation-success": the page alert over 1h would need an error ratio above 1.44`) {
		t.Errorf("got %v, want an error naming the SLO, the alert and the impossible ratio", err)
	}
}

// TestBurnFactors: the workbook's factors for 30 days, scaled for others.
func TestBurnFactors(t *testing.T) {
	const day = 24 * 60 * 60 * 1e9
	for i, want := range []float64{14.4, 6, 3, 1} {
		if got := slo.DefaultBurnWindows[i].Factor(30 * day); got < want-1e-9 || got > want+1e-9 {
			t.Errorf("window %d: factor %g for 30d, want %g", i, got, want)
		}
	}
	if got := slo.DefaultBurnWindows[0].Factor(7 * day); got < 3.36-1e-9 || got > 3.36+1e-9 {
		t.Errorf("page factor for 7d = %g, want 3.36", got)
	}
}

// TestPromtool is issue 7's acceptance 1: promtool checks the generated
// rules and runs the unit tests of their alerts.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool", err)
	}
	groups, b := defaultRules(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "slos.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "slos_test.yaml"), promtoolTests(t, groups), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "slos.yaml"}, {"test", "rules", "slos_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// promtoolTests builds the promtool unit tests of the validation-success
// alerts (objective 99.9 %, 30 days: page above 1.44 % errors over 1 h and
// 5 m, or 0.6 % over 6 h and 30 m; at least 100 events).
func promtoolTests(t *testing.T, groups rulefmt.RuleGroups) []byte {
	t.Helper()
	const name = "validation-success"
	var page, ticket rulefmt.Rule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Labels["slo"] != name {
				continue
			}
			switch r.Alert {
			case "VigilSLOErrorBudgetBurnPage":
				page = r
			case "VigilSLOErrorBudgetBurnTicket":
				ticket = r
			}
		}
	}
	if page.Alert == "" || ticket.Alert == "" {
		t.Fatal("no page or ticket alert for " + name)
	}
	fired := func(r rulefmt.Rule) []map[string]any {
		labels := map[string]string{"slo": name}
		for k, v := range r.Labels {
			labels[k] = v
		}
		return []map[string]any{{"exp_labels": labels, "exp_annotations": r.Annotations}}
	}
	firing := fired(page)
	none := []map[string]any{}
	series := func(good, bad string) []map[string]string {
		return []map[string]string{
			{"series": `vigil_slo_events_total{slo="` + name + `",result="good"}`, "values": good},
			{"series": `vigil_slo_events_total{slo="` + name + `",result="bad"}`, "values": bad},
		}
	}
	alert := func(at string, exp []map[string]any) map[string]any {
		return map[string]any{"eval_time": at, "alertname": page.Alert, "exp_alerts": exp}
	}
	ticketAlert := func(at string, exp []map[string]any) map[string]any {
		return map[string]any{"eval_time": at, "alertname": ticket.Alert, "exp_alerts": exp}
	}
	doc := map[string]any{
		"rule_files":          []string{"slos.yaml"},
		"evaluation_interval": "1m",
		"tests": []map[string]any{
			{
				// After six clean hours the 6h window stays under 6x for
				// 1.8 h: only the 1h/5m condition can page at 50 minutes.
				"name":         "after clean hours, a sustained 20x burn (2 % errors) pages through the 1h/5m condition in under an hour",
				"interval":     "1m",
				"input_series": series("0+100x600", "0x360 0+2x240"),
				"alert_rule_test": []map[string]any{
					alert("360m", none), alert("385m", none), alert("410m", firing), alert("8h", firing),
				},
			},
			{
				"name":         "a 5x burn (0.5 % errors) files a ticket and does not page",
				"interval":     "1m",
				"input_series": series("0+199x240", "0+1x240"),
				"alert_rule_test": []map[string]any{
					alert("3h", none), ticketAlert("3h", fired(ticket)), ticketAlert("0m", none),
				},
			},
			{
				"name":         "a 1x burn (0.1 % errors for a day) never pages",
				"interval":     "1m",
				"input_series": series("0+999x1440", "0+1x1440"),
				"alert_rule_test": []map[string]any{
					alert("10m", none), alert("1h", none), alert("6h", none), alert("1d", none),
				},
			},
			{
				"name":         "a one-minute spike (50 % errors) alone does not page",
				"interval":     "1m",
				"input_series": series("0+100x600", "0x420 50x180"),
				"alert_rule_test": []map[string]any{
					alert("422m", none), alert("425m", none), alert("8h", none),
				},
			},
			{
				"name":         "one failure among ten requests an hour does not page (minimum events)",
				"interval":     "1m",
				"input_series": series("0+0.15x120", "0x60 1x60"),
				"alert_rule_test": []map[string]any{
					alert("63m", none), alert("90m", none),
				},
			},
			{
				"name":         "no traffic records no error ratio, not NaN",
				"interval":     "1m",
				"input_series": series("0x120", "0x120"),
				"promql_expr_test": []map[string]any{
					{"expr": `slo:sli_error:ratio_rate5m{sloth_slo="` + name + `"}`, "eval_time": "1h", "exp_samples": []any{}},
					{"expr": `slo:sli_error:ratio_rate1h{sloth_slo="` + name + `"}`, "eval_time": "1h", "exp_samples": []any{}},
				},
			},
		},
	}
	var buf bytes.Buffer
	buf.WriteString("# Generated by the slo package's tests (go test ./slo -update); do not edit.\n# Run: promtool test rules alerts/rules/slos_test.yaml\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
