package alerts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// AnomalyAlertNames are the alertnames vigil itself sends to Alertmanager
// for anomalies (one per detector, or per kind of login_storm, plus the
// revoker's own two). Every name has a runbook in alerts/runbooks/.
var AnomalyAlertNames = []string{
	"VigilTokenReuse",
	"VigilSessionHijack",
	"VigilUseAfterRevocation",
	"VigilCredentialStuffing",
	"VigilPasswordSpraying",
	"VigilBruteForce",
	"VigilLoginStorm",
	"VigilReconnectStorm",
	"VigilSessionChurn",
	"VigilRevocationHalted",
	"VigilRevocationFailed",
}

// PipelineRulesGroup is the name of the rule group PipelineRules returns.
const PipelineRulesGroup = "vigil-pipeline"

// PipelineOptions are the thresholds of the pipeline's alerting rules.
// DefaultPipelineOptions gives the documented defaults; every field must
// be set (a zero duration is allowed only for the For fields, meaning the
// alert fires at the first evaluation that matches).
type PipelineOptions struct {
	// Job is the Prometheus job label of vigil's scrape targets (default "vigil").
	Job string
	// RunbookBaseURL is where alerts/runbooks is published: each alert's
	// runbook_url is RunbookBaseURL + "/" + alertname + ".md" (default
	// DefaultRunbookURL).
	RunbookBaseURL string
	// RateWindow is the range of rate() in the dead-letter, insert-retry,
	// window-lag traffic guard and delivery alerts (default 5m).
	RateWindow time.Duration

	// DownFor is how long a target must be down or missing before
	// VigilPipelineDown fires (default 2m).
	DownFor time.Duration
	// MaxConsumerLag is the age of the oldest uncommitted event above
	// which VigilConsumerLagHigh fires (default 1m) after ConsumerLagFor
	// (default 5m).
	MaxConsumerLag, ConsumerLagFor time.Duration
	// MaxDeadLetterRatio is the share of messages dead-lettered over
	// RateWindow above which VigilDeadLettersHigh fires (default 0.01,
	// 1 %) after DeadLettersFor (default 15m).
	MaxDeadLetterRatio float64
	// DeadLettersFor: see MaxDeadLetterRatio.
	DeadLettersFor time.Duration
	// InsertRetriesFor is how long ClickHouse inserts must keep being
	// retried before VigilClickHouseInsertsFailing fires (default 5m).
	InsertRetriesFor time.Duration
	// RevocationFailureWindow is how long after a failed revocation
	// VigilRevocationsFailing keeps firing (default 15m).
	RevocationFailureWindow time.Duration
	// CircuitOpenFor is how long a session API circuit breaker must stay
	// open before VigilRevocationCircuitOpen fires (default 2m).
	CircuitOpenFor time.Duration
	// HaltedFor is how long the blast-radius cap must keep revocation
	// halted before VigilRevokerHalted fires (default 0: at once).
	HaltedFor time.Duration
	// WindowInactiveFor is how long no process may run the window
	// detectors before VigilDetectorsStalled fires (default 5m).
	WindowInactiveFor time.Duration
	// MaxWindowLag is how far behind the wall clock the window detectors'
	// last judged window may end, while events arrive, before
	// VigilDetectorsStalled fires (default 5m) after WindowLagFor (default 10m).
	MaxWindowLag, WindowLagFor time.Duration
	// UndeliveredFor is how long posts to an Alertmanager must keep failing
	// before VigilAlertsUndelivered fires (default 10m).
	UndeliveredFor time.Duration
}

// DefaultPipelineOptions returns the documented thresholds: page when vigil
// is down for 2m, more than 1m behind for 5m, retrying ClickHouse inserts
// for 5m, failing a revocation (for 15m after it), with a circuit breaker
// open for 2m, halted by the blast-radius cap, without window detectors for
// 5m or with them 5m late for 10m, or unable to reach Alertmanager for
// 10m; file a ticket when more than 1 % of messages are dead-lettered for
// 15m.
func DefaultPipelineOptions() PipelineOptions {
	return PipelineOptions{
		Job:                     "vigil",
		RunbookBaseURL:          DefaultRunbookURL,
		RateWindow:              5 * time.Minute,
		DownFor:                 2 * time.Minute,
		MaxConsumerLag:          time.Minute,
		ConsumerLagFor:          5 * time.Minute,
		MaxDeadLetterRatio:      0.01,
		DeadLettersFor:          15 * time.Minute,
		InsertRetriesFor:        5 * time.Minute,
		RevocationFailureWindow: 15 * time.Minute,
		CircuitOpenFor:          2 * time.Minute,
		HaltedFor:               0,
		WindowInactiveFor:       5 * time.Minute,
		MaxWindowLag:            5 * time.Minute,
		WindowLagFor:            10 * time.Minute,
		UndeliveredFor:          10 * time.Minute,
	}
}

// Validate reports every unusable option, each error naming its field.
func (o PipelineOptions) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("pipeline rules: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(o.Job) == "" {
		bad("Job", "must name the Prometheus job of vigil's targets")
	}
	if o.RunbookBaseURL == "" {
		bad("RunbookBaseURL", "must be set (alerts/runbooks as published, e.g. %s)", DefaultRunbookURL)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"RateWindow", o.RateWindow}, {"MaxConsumerLag", o.MaxConsumerLag}, {"RevocationFailureWindow", o.RevocationFailureWindow}, {"MaxWindowLag", o.MaxWindowLag}} {
		if d.v < time.Second {
			bad(d.field, "must be at least 1s, got %s", d.v)
		}
	}
	if o.RateWindow > 0 && o.RateWindow < time.Minute {
		bad("RateWindow", "must be at least 1m so that rate() sees two scrapes, got %s", o.RateWindow)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"DownFor", o.DownFor}, {"ConsumerLagFor", o.ConsumerLagFor}, {"DeadLettersFor", o.DeadLettersFor}, {"InsertRetriesFor", o.InsertRetriesFor},
		{"CircuitOpenFor", o.CircuitOpenFor}, {"HaltedFor", o.HaltedFor}, {"WindowInactiveFor", o.WindowInactiveFor}, {"WindowLagFor", o.WindowLagFor}, {"UndeliveredFor", o.UndeliveredFor}} {
		if d.v < 0 {
			bad(d.field, "must not be negative, got %s", d.v)
		}
	}
	if !(o.MaxDeadLetterRatio > 0 && o.MaxDeadLetterRatio < 1) {
		bad("MaxDeadLetterRatio", "must be between 0 and 1 (exclusive), got %g", o.MaxDeadLetterRatio)
	}
	return errors.Join(errs...)
}

// PipelineRules returns the alerting rules that watch vigil itself (one
// group, PipelineRulesGroup): VigilPipelineDown, VigilConsumerLagHigh,
// VigilDeadLettersHigh, VigilClickHouseInsertsFailing,
// VigilRevocationsFailing, VigilRevocationCircuitOpen, VigilRevokerHalted,
// VigilDetectorsStalled (two rules: no process runs the window detectors,
// or they run late while events arrive) and VigilAlertsUndelivered. Every
// alert has the labels severity (page or ticket) and team (sre) and the
// annotations summary, description and runbook_url; every expression is
// checked with the PromQL parser.
func PipelineRules(o PipelineOptions) (rulefmt.RuleGroups, error) {
	if err := o.Validate(); err != nil {
		return rulefmt.RuleGroups{}, err
	}
	rw := promDuration(o.RateWindow)
	up := fmt.Sprintf("up{job=%s}", strconv.Quote(o.Job))
	type alert struct {
		name, severity, expr, summary, description string
		forDur                                     time.Duration
		labels                                     map[string]string
	}
	alerts := []alert{
		{
			name: "VigilPipelineDown", severity: "page", forDur: o.DownFor,
			expr:    fmt.Sprintf("%s == 0\nor\nabsent(%s)", up, up),
			summary: "vigil is down or not scraped",
			description: fmt.Sprintf("A vigil target of job %q (see the instance label) has failed its scrapes, or Prometheus scrapes no target of that job at all, for %s. "+
				"Session events may not be ingested or judged, sessions not revoked, and vigil's own alerts not sent.", o.Job, promDuration(o.DownFor)),
		},
		{
			name: "VigilConsumerLagHigh", severity: "page", forDur: o.ConsumerLagFor,
			expr:    fmt.Sprintf("max(vigil_ingest_lag_seconds) > %s", promNum(o.MaxConsumerLag.Seconds())),
			summary: "vigil is more than " + promDuration(o.MaxConsumerLag) + " behind the session events",
			description: fmt.Sprintf("The oldest uncommitted event of a partition is {{ $value | humanizeDuration }} old (over %s for %s): "+
				"detections, revocations and vigil's alerts are at least that late.", promDuration(o.MaxConsumerLag), promDuration(o.ConsumerLagFor)),
		},
		{
			name: "VigilDeadLettersHigh", severity: "ticket", forDur: o.DeadLettersFor,
			expr: fmt.Sprintf("sum(rate(vigil_ingest_invalid_total[%s]))\n/\n(\n  (sum(rate(vigil_ingest_events_total[%s])) or vector(0))\n  +\n  sum(rate(vigil_ingest_invalid_total[%s]))\n)\n> %s",
				rw, rw, rw, promNum(o.MaxDeadLetterRatio)),
			summary: "vigil dead-letters more than " + promPercent(o.MaxDeadLetterRatio) + " of the session events",
			description: fmt.Sprintf("{{ $value | humanizePercentage }} of the messages read over %s were rejected to the dead-letter topic (over %s for %s): "+
				"a producer sends events vigil cannot validate, and the detectors never see them.", rw, promPercent(o.MaxDeadLetterRatio), promDuration(o.DeadLettersFor)),
		},
		{
			name: "VigilClickHouseInsertsFailing", severity: "page", forDur: o.InsertRetriesFor,
			expr:    fmt.Sprintf(`sum(rate(vigil_ingest_retries_total{op=~"insert_.*"}[%s])) > 0`, rw),
			summary: "vigil's ClickHouse inserts are failing",
			description: fmt.Sprintf("vigil has been retrying inserts into ClickHouse for %s ({{ printf \"%%.2f\" $value }} retries/s over %s). "+
				"Nothing is committed until they succeed: lag grows and detection stops, though nothing is lost.", promDuration(o.InsertRetriesFor), rw),
		},
		{
			// A process's first failure creates the series at 1, which
			// increase() cannot see: the second arm counts series newer than
			// the window.
			name: "VigilRevocationsFailing", severity: "page",
			expr: fmt.Sprintf("sum(increase(vigil_revoke_actions_total{status=\"failed\"}[%s])) > 0\nor\n"+
				"sum(vigil_revoke_actions_total{status=\"failed\"} unless vigil_revoke_actions_total{status=\"failed\"} offset %s) > 0",
				promDuration(o.RevocationFailureWindow), promDuration(o.RevocationFailureWindow)),
			summary: "vigil failed to revoke sessions",
			description: fmt.Sprintf("About {{ printf \"%%.0f\" $value }} revocation(s) failed in the last %s: the session API refused them or they passed revoke.deadline. "+
				"Those sessions may still be in an attacker's hands; each failure also raised a VigilRevocationFailed alert.", promDuration(o.RevocationFailureWindow)),
		},
		{
			name: "VigilRevocationCircuitOpen", severity: "page", forDur: o.CircuitOpenFor,
			expr:    "max by (endpoint) (vigil_revoke_circuit_open) == 1",
			summary: "The session API's circuit breaker is open",
			description: fmt.Sprintf("vigil's circuit breaker for {{ $labels.endpoint }} has been open for %s: the session API is failing or throttling. "+
				"Revocations wait and retry; those not done by revoke.deadline fail.", promDuration(o.CircuitOpenFor)),
		},
		{
			name: "VigilRevokerHalted", severity: "page", forDur: o.HaltedFor,
			expr:    "max(vigil_revoke_halted) == 1",
			summary: "vigil halted automated revocation (blast-radius cap)",
			description: "More than revoke.max_actions revocations within revoke.cap_window: vigil revokes nothing until revoke.halt_for passes or someone runs `vigil revoke resume`. " +
				"vigil's own VigilRevocationHalted alert carries the context; this is the backstop.",
		},
		{
			name: "VigilDetectorsStalled", severity: "page", forDur: o.WindowInactiveFor,
			labels:  map[string]string{"condition": "inactive"},
			expr:    "sum(vigil_detect_window_active) == 0",
			summary: "No vigil process runs the window detectors",
			description: fmt.Sprintf("For %s no process has owned partition 0 of the events topic, so login storms and session churn are not judged. "+
				"They are judged late, not skipped, once a process takes over.", promDuration(o.WindowInactiveFor)),
		},
		{
			name: "VigilDetectorsStalled", severity: "page", forDur: o.WindowLagFor,
			labels: map[string]string{"condition": "late"},
			expr: fmt.Sprintf("max(vigil_detect_window_lag_seconds and on (job, instance) vigil_detect_window_active == 1) > %s\nand on ()\nsum(rate(vigil_ingest_events_total[%s])) > 0",
				promNum(o.MaxWindowLag.Seconds()), rw),
			summary: "vigil's window detectors are late",
			description: fmt.Sprintf("The last window judged by the window detectors ended {{ $value | humanizeDuration }} ago (over %s for %s) while events keep arriving: "+
				"login storms and session churn are seen that late. A lagging partition or slow ClickHouse holds the watermark back.", promDuration(o.MaxWindowLag), promDuration(o.WindowLagFor)),
		},
		{
			name: "VigilAlertsUndelivered", severity: "page", forDur: o.UndeliveredFor,
			expr:    fmt.Sprintf("sum by (alertmanager) (rate(vigil_alerts_errors_total[%s])) > 0", rw),
			summary: "vigil cannot deliver its alerts to Alertmanager",
			description: fmt.Sprintf("vigil's posts to Alertmanager {{ $labels.alertmanager }} have been failing for %s: anomaly alerts (token theft, hijacks, failed revocations) do not reach anyone. "+
				"The anomalies are still in ClickHouse and revocation is unaffected.", promDuration(o.UndeliveredFor)),
		},
	}
	base := strings.TrimRight(o.RunbookBaseURL, "/")
	p := parser.NewParser(parser.Options{})
	group := rulefmt.RuleGroup{Name: PipelineRulesGroup}
	for _, a := range alerts {
		if _, err := p.ParseExpr(a.expr); err != nil {
			return rulefmt.RuleGroups{}, fmt.Errorf("pipeline rules: %s: %w", a.name, err)
		}
		labels := map[string]string{"severity": a.severity, "team": TeamSRE}
		for k, v := range a.labels {
			labels[k] = v
		}
		group.Rules = append(group.Rules, rulefmt.Rule{
			Alert:  a.name,
			Expr:   a.expr,
			For:    model.Duration(a.forDur),
			Labels: labels,
			Annotations: map[string]string{
				"summary":     a.summary,
				"description": a.description,
				"runbook_url": base + "/" + a.name + ".md",
			},
		})
	}
	return rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{group}}, nil
}

// AlertNames returns the distinct alertnames of groups' alerting rules, in order.
func AlertNames(groups rulefmt.RuleGroups) []string {
	var names []string
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !seen[r.Alert] {
				seen[r.Alert] = true
				names = append(names, r.Alert)
			}
		}
	}
	return names
}

// MarshalRules renders rule groups as a Prometheus rule file and checks it
// the way Prometheus loads it: rulefmt's validation (templates included)
// with the PromQL parser.
func MarshalRules(groups rulefmt.RuleGroups) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Generated by `vigil rules generate`; do not edit. Runbooks: alerts/runbooks/.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(groups); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if _, errs := rulefmt.Parse(buf.Bytes(), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil))); len(errs) > 0 {
		return nil, fmt.Errorf("alerts: generated rules do not load: %w", errors.Join(errs...))
	}
	return buf.Bytes(), nil
}

// promNum renders a number for PromQL without float noise.
func promNum(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }

// promDuration renders a duration the way PromQL and rule files write it (5m, 1h30m).
func promDuration(d time.Duration) string { return model.Duration(d).String() }

// promPercent renders a ratio as a percentage (0.01 → 1%).
func promPercent(x float64) string { return strconv.FormatFloat(x*100, 'g', 4, 64) + "%" }
