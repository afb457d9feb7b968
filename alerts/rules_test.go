package alerts_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/internal/golden"
	"github.com/vigilhq/vigil/internal/testenv"
)

// The committed default output: operators load it as it is and run
// `promtool test rules alerts/rules/pipeline_test.yaml`.
const (
	pipelinePath     = "rules/pipeline.yaml"
	pipelineTestPath = "rules/pipeline_test.yaml"
	runbookDir       = "runbooks"
)

func defaultPipeline(t *testing.T) (rulefmt.RuleGroups, []byte) {
	t.Helper()
	groups, err := alerts.PipelineRules(alerts.DefaultPipelineOptions())
	if err != nil {
		t.Fatal(err)
	}
	b, err := alerts.MarshalRules(groups)
	if err != nil {
		t.Fatal(err)
	}
	return groups, b
}

// TestPipelineRulesAreCommitted keeps alerts/rules/pipeline.yaml and its
// promtool tests in sync with the generator.
func TestPipelineRulesAreCommitted(t *testing.T) {
	groups, b := defaultPipeline(t)
	golden.Check(t, pipelinePath, b)
	golden.Check(t, pipelineTestPath, pipelinePromtoolTests(t, groups))
}

// TestPipelineRulesPromtool: promtool checks the generated rules and runs
// their unit tests (each alert fires when it should and stays quiet when
// the pipeline is healthy).
func TestPipelineRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool", err)
	}
	groups, b := defaultPipeline(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pipeline.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pipeline_test.yaml"), pipelinePromtoolTests(t, groups), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "pipeline.yaml"}, {"test", "rules", "pipeline_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestPipelineRulesShape: every alert pages or files a ticket for sre and
// links its runbook; the options reach the expressions.
func TestPipelineRulesShape(t *testing.T) {
	groups, _ := defaultPipeline(t)
	want := []string{"VigilPipelineDown", "VigilConsumerLagHigh", "VigilDeadLettersHigh", "VigilClickHouseInsertsFailing",
		"VigilRevocationsFailing", "VigilRevocationCircuitOpen", "VigilRevokerHalted", "VigilDetectorsStalled", "VigilAlertsUndelivered"}
	if got := alerts.AlertNames(groups); !slices.Equal(got, want) {
		t.Errorf("alert names = %v, want %v", got, want)
	}
	for _, r := range groups.Groups[0].Rules {
		if sev := r.Labels["severity"]; (sev != "page" && sev != "ticket") || r.Labels["team"] != "sre" {
			t.Errorf("%s: labels %v, want severity page|ticket and team sre", r.Alert, r.Labels)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" ||
			r.Annotations["runbook_url"] != "https://github.com/vigilhq/vigil/blob/main/alerts/runbooks/"+r.Alert+".md" {
			t.Errorf("%s: annotations %v", r.Alert, r.Annotations)
		}
		if strings.Contains(r.Expr, "$__") {
			t.Errorf("%s: Grafana variable in %q", r.Alert, r.Expr)
		}
	}

	o := alerts.DefaultPipelineOptions()
	o.Job, o.RunbookBaseURL = "vigil-prod", "https://wiki.example.com/runbooks/"
	o.MaxConsumerLag, o.MaxDeadLetterRatio, o.RateWindow, o.HaltedFor = 90*time.Second, 0.05, 10*time.Minute, time.Minute
	groups, err := alerts.PipelineRules(o)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]rulefmt.Rule{}
	for _, r := range groups.Groups[0].Rules {
		rules[r.Alert] = r
	}
	f := func(alert, field, got, want string) {
		t.Helper()
		if !strings.Contains(got, want) {
			t.Errorf("%s %s = %q, want it to contain %q", alert, field, got, want)
		}
	}
	f("VigilPipelineDown", "expr", rules["VigilPipelineDown"].Expr, `up{job="vigil-prod"} == 0`)
	f("VigilPipelineDown", "expr", rules["VigilPipelineDown"].Expr, `absent(up{job="vigil-prod"})`)
	f("VigilPipelineDown", "runbook_url", rules["VigilPipelineDown"].Annotations["runbook_url"], "https://wiki.example.com/runbooks/VigilPipelineDown.md")
	f("VigilConsumerLagHigh", "expr", rules["VigilConsumerLagHigh"].Expr, "> 90")
	f("VigilConsumerLagHigh", "summary", rules["VigilConsumerLagHigh"].Annotations["summary"], "more than 1m30s behind")
	f("VigilDeadLettersHigh", "expr", rules["VigilDeadLettersHigh"].Expr, "[10m]")
	f("VigilDeadLettersHigh", "expr", rules["VigilDeadLettersHigh"].Expr, "> 0.05")
	f("VigilDeadLettersHigh", "summary", rules["VigilDeadLettersHigh"].Annotations["summary"], "more than 5%")
	f("VigilRevokerHalted", "for", rules["VigilRevokerHalted"].For.String(), "1m")
}

// TestPipelineOptionsValidate: unusable thresholds are errors naming the field.
func TestPipelineOptionsValidate(t *testing.T) {
	f := func(change func(*alerts.PipelineOptions), want ...string) {
		t.Helper()
		o := alerts.DefaultPipelineOptions()
		change(&o)
		_, err := alerts.PipelineRules(o)
		testenv.WantErrorLines(t, err, want)
	}
	f(func(o *alerts.PipelineOptions) { o.Job, o.RunbookBaseURL = " ", "" },
		"Job: must name the Prometheus job", "RunbookBaseURL: must be set")
	f(func(o *alerts.PipelineOptions) { o.RateWindow = 30 * time.Second }, "RateWindow: must be at least 1m")
	f(func(o *alerts.PipelineOptions) { o.MaxConsumerLag, o.MaxWindowLag = 0, time.Millisecond },
		"MaxConsumerLag: must be at least 1s, got 0s", "MaxWindowLag: must be at least 1s, got 1ms")
	f(func(o *alerts.PipelineOptions) { o.DownFor = -time.Minute }, "DownFor: must not be negative, got -1m0s")
	f(func(o *alerts.PipelineOptions) { o.MaxDeadLetterRatio = 1 }, "MaxDeadLetterRatio: must be between 0 and 1 (exclusive), got 1")
	f(func(o *alerts.PipelineOptions) { o.MaxDeadLetterRatio = 0 }, "MaxDeadLetterRatio: must be between 0 and 1 (exclusive), got 0")
}

// TestMarshalRulesRejectsBadRules: the file goes through Prometheus' own
// loader, so a broken expression or template never reaches disk.
func TestMarshalRulesRejectsBadRules(t *testing.T) {
	f := func(r rulefmt.Rule) {
		t.Helper()
		bad := rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{{Name: "g", Rules: []rulefmt.Rule{r}}}}
		if _, err := alerts.MarshalRules(bad); err == nil || !strings.Contains(err.Error(), "do not load") {
			t.Errorf("MarshalRules(%+v) = %v, want an error", r, err)
		}
	}
	f(rulefmt.Rule{Alert: "A", Expr: "sum(rate(x[5m])"})
	f(rulefmt.Rule{Alert: "A", Expr: "up == 0", Annotations: map[string]string{"description": "{{ $value "}})
}

// TestRunbooks: every pipeline alert and every anomaly alert has a
// runbook with the four sections, and every runbook belongs to one.
func TestRunbooks(t *testing.T) {
	groups, _ := defaultPipeline(t)
	known := map[string]bool{}
	for _, n := range append(alerts.AlertNames(groups), alerts.AnomalyAlertNames...) {
		if known[n] {
			t.Errorf("alert %s is both a pipeline and an anomaly alert (or listed twice)", n)
		}
		known[n] = true
		b, err := os.ReadFile(filepath.Join(runbookDir, n+".md"))
		if err != nil {
			t.Errorf("alert %s has no runbook: %v", n, err)
			continue
		}
		text := string(b)
		if !strings.HasPrefix(text, "# "+n+"\n") {
			t.Errorf("%s.md: must start with the heading # %s", n, n)
		}
		for _, h := range []string{"## What it means", "## Confirm", "## What to do", "## Escalate"} {
			if !strings.Contains(text, "\n"+h+"\n") {
				t.Errorf("%s.md: no %q section", n, h)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(runbookDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name, ok := strings.CutSuffix(filepath.Base(f), ".md")
		if !ok || !known[name] {
			t.Errorf("%s is not the runbook of a known alert", f)
		}
	}
}

var (
	sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")
	vigilDB  = regexp.MustCompile(`\bvigil\.(events|event_subjects|anomalies|actions|dead_letters)\b`)
)

// TestRunbookSQL runs every SQL block of the runbooks against a migrated
// ClickHouse database (the placeholders are plain literals), so the
// queries a responder pastes at 3 a.m. work.
func TestRunbookSQL(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(runbookDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	type query struct{ file, sql string }
	var queries []query
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sqlBlock.FindAllStringSubmatch(string(b), -1) {
			for _, q := range strings.Split(stripSQLComments(m[1]), ";") {
				if strings.TrimSpace(q) != "" {
					queries = append(queries, query{filepath.Base(f), q})
				}
			}
		}
	}
	if len(queries) < len(files) {
		t.Fatalf("only %d SQL queries in %d runbooks", len(queries), len(files))
	}
	_, conn, db := testenv.MigratedDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, q := range queries {
		sql := vigilDB.ReplaceAllString(q.sql, db+".$1")
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.file, err, q.sql)
			continue
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v\n%s", q.file, err, q.sql)
		}
		_ = rows.Close()
	}
}

// stripSQLComments drops the -- comment lines (which may hold semicolons).
func stripSQLComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// promFiring is one alert a promtool check expects: the labels its series
// carry besides the rule's, and $value as the annotations render it.
type promFiring struct {
	labels map[string]string
	value  string
}

// The promtool unit test file, in the order promtool documents it.
type (
	promtoolFile struct {
		RuleFiles          []string       `yaml:"rule_files"`
		EvaluationInterval string         `yaml:"evaluation_interval"`
		Tests              []promtoolTest `yaml:"tests"`
	}
	promtoolTest struct {
		Name          string              `yaml:"name"`
		Interval      string              `yaml:"interval"`
		InputSeries   []promtoolSeries    `yaml:"input_series"`
		AlertRuleTest []promtoolAlertTest `yaml:"alert_rule_test"`
	}
	promtoolSeries struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	promtoolAlertTest struct {
		EvalTime  string          `yaml:"eval_time"`
		Alertname string          `yaml:"alertname"`
		ExpAlerts []promtoolAlert `yaml:"exp_alerts"`
	}
	promtoolAlert struct {
		ExpLabels      map[string]string `yaml:"exp_labels"`
		ExpAnnotations map[string]string `yaml:"exp_annotations"`
	}
)

type promCheck struct {
	at, alert string
	firing    []promFiring
}

type promCase struct {
	name   string
	series map[string]string
	checks []promCheck
}

var (
	valueTemplate = regexp.MustCompile(`\{\{[^}]*\$value[^}]*\}\}`)
	labelTemplate = regexp.MustCompile(`\{\{ \$labels\.(\w+) \}\}`)
)

// pipelinePromtoolTests builds the promtool unit tests of the default
// pipeline rules: for each alert, when it fires and the look-alikes that
// must not page.
func pipelinePromtoolTests(t *testing.T, groups rulefmt.RuleGroups) []byte {
	t.Helper()
	const (
		up0        = `up{job="vigil",instance="vigil-0:9464"}`
		up1        = `up{job="vigil",instance="vigil-1:9464"}`
		lag0       = `vigil_ingest_lag_seconds{job="vigil",instance="vigil-0:9464",topic="session-events",partition="0"}`
		lag1       = `vigil_ingest_lag_seconds{job="vigil",instance="vigil-1:9464",topic="session-events",partition="1"}`
		events     = `vigil_ingest_events_total{job="vigil",instance="vigil-0:9464",type="session.validated"}`
		invalid    = `vigil_ingest_invalid_total{job="vigil",instance="vigil-0:9464",reason="missing_field"}`
		failed     = `vigil_revoke_actions_total{job="vigil",instance="vigil-0:9464",status="failed",guardrail=""}`
		succeeded  = `vigil_revoke_actions_total{job="vigil",instance="vigil-0:9464",status="succeeded",guardrail=""}`
		breaker    = `vigil_revoke_circuit_open{job="vigil",instance="vigil-0:9464",endpoint="https://sessions.internal"}`
		active0    = `vigil_detect_window_active{job="vigil",instance="vigil-0:9464"}`
		active1    = `vigil_detect_window_active{job="vigil",instance="vigil-1:9464"}`
		windowLag0 = `vigil_detect_window_lag_seconds{job="vigil",instance="vigil-0:9464"}`
		windowLag1 = `vigil_detect_window_lag_seconds{job="vigil",instance="vigil-1:9464"}`
		amErrors   = `vigil_alerts_errors_total{job="vigil",instance="vigil-0:9464",alertmanager="http://alertmanager-0:9093"}`
		amSent     = `vigil_alerts_sent_total{job="vigil",instance="vigil-0:9464",alertmanager="http://alertmanager-0:9093"}`
	)
	inst := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	none := func(at, alert string) promCheck { return promCheck{at: at, alert: alert} }
	fires := func(at, alert string, f ...promFiring) promCheck { return promCheck{at: at, alert: alert, firing: f} }
	cases := []promCase{
		{
			name:   "VigilPipelineDown: one target failing its scrapes for 2m pages; the healthy one does not",
			series: map[string]string{up0: "1x5 0x10", up1: "1x15"},
			checks: []promCheck{none("5m", "VigilPipelineDown"), none("7m", "VigilPipelineDown"),
				fires("9m", "VigilPipelineDown", promFiring{labels: inst("job", "vigil", "instance", "vigil-0:9464")})},
		},
		{
			name:   "VigilPipelineDown: no vigil target scraped at all pages",
			series: map[string]string{`up{job="node",instance="host:9100"}`: "1x10"},
			checks: []promCheck{none("1m", "VigilPipelineDown"), fires("3m", "VigilPipelineDown", promFiring{labels: inst("job", "vigil")})},
		},
		{
			name:   "VigilConsumerLagHigh: 90s behind for 5m pages",
			series: map[string]string{lag0: "0x5 90x15", lag1: "0x20"},
			checks: []promCheck{none("5m", "VigilConsumerLagHigh"), none("10m", "VigilConsumerLagHigh"),
				fires("12m", "VigilConsumerLagHigh", promFiring{value: "1m 30s"})},
		},
		{
			name:   "VigilConsumerLagHigh: a three-minute catch-up after a rebalance does not page",
			series: map[string]string{lag0: "0x5 120x3 0x12"},
			checks: []promCheck{none("8m", "VigilConsumerLagHigh"), none("10m", "VigilConsumerLagHigh"), none("15m", "VigilConsumerLagHigh")},
		},
		{
			name:   "VigilDeadLettersHigh: 2 % of the messages dead-lettered for 15m files a ticket",
			series: map[string]string{events: "0+980x40", invalid: "0+20x40"},
			checks: []promCheck{none("14m", "VigilDeadLettersHigh"), fires("17m", "VigilDeadLettersHigh", promFiring{value: "2%"})},
		},
		{
			name:   "VigilDeadLettersHigh: every message dead-lettered, no valid event ever, files a ticket",
			series: map[string]string{invalid: "0+10x40"},
			checks: []promCheck{fires("20m", "VigilDeadLettersHigh", promFiring{value: "100%"})},
		},
		{
			name:   "VigilDeadLettersHigh: 0.5 % dead-lettered, or none, stays quiet",
			series: map[string]string{events: "0+995x40", invalid: "0+5x40", `vigil_ingest_invalid_total{job="vigil",instance="vigil-0:9464",reason="malformed_json"}`: "0x40"},
			checks: []promCheck{none("20m", "VigilDeadLettersHigh"), none("40m", "VigilDeadLettersHigh")},
		},
		{
			name: "VigilClickHouseInsertsFailing: event inserts retried for 5m page; DLQ produce retries do not count",
			series: map[string]string{
				`vigil_ingest_retries_total{job="vigil",instance="vigil-0:9464",op="insert_events"}`: "0x5 6+6x20",
				`vigil_ingest_retries_total{job="vigil",instance="vigil-0:9464",op="produce_dlq"}`:   "0+6x25",
			},
			checks: []promCheck{none("5m", "VigilClickHouseInsertsFailing"), none("10m", "VigilClickHouseInsertsFailing"),
				fires("12m", "VigilClickHouseInsertsFailing", promFiring{value: "0.10"})},
		},
		{
			name:   "VigilClickHouseInsertsFailing: a single retried insert does not page",
			series: map[string]string{`vigil_ingest_retries_total{job="vigil",instance="vigil-0:9464",op="insert_anomalies"}`: "0x5 1x20"},
			checks: []promCheck{none("8m", "VigilClickHouseInsertsFailing"), none("11m", "VigilClickHouseInsertsFailing"), none("15m", "VigilClickHouseInsertsFailing")},
		},
		{
			name:   "VigilRevocationsFailing: a failed revocation pages at once and for 15m",
			series: map[string]string{failed: "0x10 1x30", succeeded: "0+2x40"},
			checks: []promCheck{none("10m", "VigilRevocationsFailing"), fires("12m", "VigilRevocationsFailing", promFiring{value: "1"}),
				none("28m", "VigilRevocationsFailing")},
		},
		{
			name:   "VigilRevocationsFailing: a process's first failure, whose series starts at 1, pages",
			series: map[string]string{failed: "_x11 1x30", succeeded: "0+2x40"}, // _x11: no sample at 0m…10m
			checks: []promCheck{none("10m", "VigilRevocationsFailing"), fires("12m", "VigilRevocationsFailing", promFiring{value: "1"}),
				none("28m", "VigilRevocationsFailing")},
		},
		{
			name:   "VigilRevocationsFailing: revocations succeeding stay quiet",
			series: map[string]string{succeeded: "0+2x40"},
			checks: []promCheck{none("20m", "VigilRevocationsFailing")},
		},
		{
			name:   "VigilRevocationCircuitOpen: the breaker open for 2m pages; one open minute does not",
			series: map[string]string{breaker: "0x5 1x10 0x5 1 0x5"},
			checks: []promCheck{none("7m", "VigilRevocationCircuitOpen"),
				fires("9m", "VigilRevocationCircuitOpen", promFiring{labels: inst("endpoint", "https://sessions.internal")}),
				none("21m", "VigilRevocationCircuitOpen"), none("22m", "VigilRevocationCircuitOpen")},
		},
		{
			name:   "VigilRevokerHalted: pages while the cap keeps revocation halted",
			series: map[string]string{`vigil_revoke_halted{job="vigil",instance="vigil-0:9464"}`: "0x5 1x5 0x5"},
			checks: []promCheck{none("5m", "VigilRevokerHalted"), fires("6m", "VigilRevokerHalted", promFiring{}), none("12m", "VigilRevokerHalted")},
		},
		{
			name:   "VigilDetectorsStalled: no process running the window detectors for 5m pages",
			series: map[string]string{active0: "1x5 0x15", active1: "0x20"},
			checks: []promCheck{none("10m", "VigilDetectorsStalled"),
				fires("12m", "VigilDetectorsStalled", promFiring{labels: inst("condition", "inactive")})},
		},
		{
			name:   "VigilDetectorsStalled: a handover between processes does not page",
			series: map[string]string{active0: "1x5 0x15", active1: "0x6 1x14"},
			checks: []promCheck{none("6m", "VigilDetectorsStalled"), none("12m", "VigilDetectorsStalled")},
		},
		{
			name: "VigilDetectorsStalled: window detectors more than 5m late for 10m while events arrive page",
			series: map[string]string{active0: "1x25", active1: "0x25", windowLag0: "10x5 400x20", windowLag1: "0x25",
				events: "0+100x25"},
			checks: []promCheck{none("15m", "VigilDetectorsStalled"),
				fires("17m", "VigilDetectorsStalled", promFiring{labels: inst("condition", "late"), value: "6m 40s"})},
		},
		{
			name: "VigilDetectorsStalled: a stale lag of a process that lost partition 0, or no traffic at all, does not page",
			series: map[string]string{active0: "1x25", active1: "0x25", windowLag0: "10x25", windowLag1: "900x25",
				`vigil_detect_window_lag_seconds{job="vigil",instance="vigil-2:9464"}`: "400x25", `vigil_detect_window_active{job="vigil",instance="vigil-2:9464"}`: "0x25",
				events: "0+100x25"},
			checks: []promCheck{none("20m", "VigilDetectorsStalled")},
		},
		{
			name:   "VigilDetectorsStalled: late windows with no events arriving (a quiet night) do not page",
			series: map[string]string{active0: "1x25", windowLag0: "10x5 400x20", events: "100x25"},
			checks: []promCheck{none("20m", "VigilDetectorsStalled")},
		},
		{
			name:   "VigilAlertsUndelivered: posts to an Alertmanager failing for 10m page",
			series: map[string]string{amErrors: "0x5 1+1x20", amSent: "0x25"},
			checks: []promCheck{none("15m", "VigilAlertsUndelivered"),
				fires("17m", "VigilAlertsUndelivered", promFiring{labels: inst("alertmanager", "http://alertmanager-0:9093")})},
		},
		{
			name:   "VigilAlertsUndelivered: alerts delivered stay quiet",
			series: map[string]string{amErrors: "0x25", amSent: "0+3x25"},
			checks: []promCheck{none("20m", "VigilAlertsUndelivered")},
		},
	}

	rules := groups.Groups[0].Rules
	doc := promtoolFile{RuleFiles: []string{"pipeline.yaml"}, EvaluationInterval: "1m"}
	checked := map[string]bool{}
	for _, c := range cases {
		test := promtoolTest{Name: c.name, Interval: "1m"}
		for s, v := range c.series {
			test.InputSeries = append(test.InputSeries, promtoolSeries{Series: s, Values: v})
		}
		slices.SortFunc(test.InputSeries, func(a, b promtoolSeries) int { return strings.Compare(a.Series, b.Series) })
		for _, ch := range c.checks {
			check := promtoolAlertTest{EvalTime: ch.at, Alertname: ch.alert, ExpAlerts: []promtoolAlert{}}
			for _, f := range ch.firing {
				// The rule is the one whose own labels (condition) the firing names.
				i := slices.IndexFunc(rules, func(r rulefmt.Rule) bool {
					return r.Alert == ch.alert && (r.Labels["condition"] == "" || r.Labels["condition"] == f.labels["condition"])
				})
				if i < 0 {
					t.Fatalf("%s: no rule %s for %v", c.name, ch.alert, f.labels)
				}
				r := rules[i]
				labels := map[string]string{}
				for k, v := range f.labels {
					labels[k] = v
				}
				for k, v := range r.Labels {
					labels[k] = v
				}
				ann := map[string]string{}
				for k, v := range r.Annotations {
					v = valueTemplate.ReplaceAllLiteralString(v, f.value)
					ann[k] = labelTemplate.ReplaceAllStringFunc(v, func(m string) string { return labels[labelTemplate.FindStringSubmatch(m)[1]] })
				}
				check.ExpAlerts = append(check.ExpAlerts, promtoolAlert{ExpLabels: labels, ExpAnnotations: ann})
				checked[ch.alert] = true
			}
			test.AlertRuleTest = append(test.AlertRuleTest, check)
		}
		doc.Tests = append(doc.Tests, test)
	}
	for _, n := range alerts.AlertNames(groups) {
		if !checked[n] {
			t.Errorf("no promtool test shows %s firing", n)
		}
	}
	var buf bytes.Buffer
	buf.WriteString("# Generated by the alerts package's tests (go test ./alerts -run TestPipelineRulesAreCommitted -update); do not edit.\n# Run: promtool test rules alerts/rules/pipeline_test.yaml\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
