package slo

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

// BurnWindow is one multiwindow burn-rate alert condition of the SRE
// workbook: it fires when the error ratio over both Long and Short exceeds
// the burn rate that spends BudgetShare of the error budget in Long.
type BurnWindow struct {
	// Severity is the alert's severity label: page or ticket.
	Severity string
	// Long and Short are the two windows; Short stops the alert soon after the burn stops.
	Long, Short time.Duration
	// BudgetShare is the share of the whole budget the burn spends in Long.
	BudgetShare float64
}

// Factor is the burn rate of the window for an SLO window: 14.4 for the
// first page window of a 30-day SLO.
func (w BurnWindow) Factor(sloWindow time.Duration) float64 {
	return w.BudgetShare * float64(sloWindow) / float64(w.Long)
}

// DefaultBurnWindows are the SRE workbook's: page at 2 % of the budget in
// 1 h (14.4× for 30 days) or 5 % in 6 h (6×), ticket at 10 % in 1 d (3×)
// or in 3 d (1×). Other SLO windows keep these windows and scale the
// factors.
var DefaultBurnWindows = []BurnWindow{
	{Severity: "page", Long: time.Hour, Short: 5 * time.Minute, BudgetShare: 0.02},
	{Severity: "page", Long: 6 * time.Hour, Short: 30 * time.Minute, BudgetShare: 0.05},
	{Severity: "ticket", Long: 24 * time.Hour, Short: 2 * time.Hour, BudgetShare: 0.10},
	{Severity: "ticket", Long: 3 * 24 * time.Hour, Short: 6 * time.Hour, BudgetShare: 0.10},
}

// RatioWindows are the windows an error ratio is recorded over, besides the SLO window.
var RatioWindows = []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 3 * 24 * time.Hour}

// RuleOptions tunes rule generation.
type RuleOptions struct {
	// Windows are the burn-rate alert conditions; nil is DefaultBurnWindows.
	Windows []BurnWindow
	// MinEvents is the fewest events in an alert's long window for it to
	// fire: one failure among ten requests an hour must not page.
	MinEvents float64
	// RunbookURL is put in the alerts' runbook_url annotation; "" leaves it out.
	RunbookURL string
}

// Rules returns the Prometheus rule groups for the specs: per ratio or
// latency SLO (enforcement SLIs have no live counter yet) one group
// of recording rules (Sloth's slo:* names, so existing SLO dashboards work)
// and one of multiwindow multi-burn-rate alerts. Every window's error ratio
// is the increase of the bad counter over the increase of the total over
// that window (never an average of shorter ratios), and a window without
// events records nothing rather than NaN.
func Rules(specs []Spec, o RuleOptions) (rulefmt.RuleGroups, error) {
	if err := Validate(specs); err != nil {
		return rulefmt.RuleGroups{}, err
	}
	if o.Windows == nil {
		o.Windows = DefaultBurnWindows
	}
	var groups rulefmt.RuleGroups
	for _, s := range specs {
		if s.SLI.Enforcement != nil {
			continue // no live counter yet: a revocation's outcome is known only later
		}
		budget := (100 - s.Objective) / 100
		for _, w := range o.Windows {
			if th := w.Factor(time.Duration(s.Window)) * budget; th >= 1 {
				return rulefmt.RuleGroups{}, fmt.Errorf("slo %q: the %s alert over %s would need an error ratio above %s, which cannot happen: raise the objective or shorten the window",
					s.Name, w.Severity, window(w.Long), num(th))
			}
		}
		groups.Groups = append(groups.Groups, recordingGroup(s), alertGroup(s, o))
	}
	return groups, nil
}

// Covered reports whether Rules generates rules for s: ratio and latency
// SLIs, whose counters are exported while consuming.
func Covered(s Spec) bool { return s.SLI.Enforcement == nil }

// num renders a number for PromQL without float noise (0.001, not 0.0009999999999998899).
func num(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }

func window(d time.Duration) string { return model.Duration(d).String() }

func ratioName(d time.Duration) string { return "slo:sli_error:ratio_rate" + window(d) }

// sloLabels are the labels every recorded series of an SLO carries.
func sloLabels(s Spec) map[string]string {
	return map[string]string{"sloth_service": "vigil", "sloth_slo": s.Name, "sloth_id": "vigil-" + s.Name}
}

func recordingGroup(s Spec) rulefmt.RuleGroup {
	sel := fmt.Sprintf(`vigil_slo_events_total{slo=%q`, s.Name)
	sloWindow := time.Duration(s.Window)
	var rules []rulefmt.Rule
	for _, w := range append(RatioWindows, sloWindow) {
		rules = append(rules, rulefmt.Rule{
			Record: ratioName(w),
			Expr: fmt.Sprintf("sum by (slo) (increase(%s,result=\"bad\"}[%s]))\n/\n(sum by (slo) (increase(%s}[%s])) > 0)",
				sel, window(w), sel, window(w)),
			Labels: sloLabels(s),
		})
	}
	objective := s.Objective / 100
	budget := (100 - s.Objective) / 100
	on := fmt.Sprintf("{sloth_id=%q}", "vigil-"+s.Name)
	rules = append(rules,
		rulefmt.Rule{Record: "slo:objective:ratio", Expr: num(objective), Labels: withSLO(s)},
		rulefmt.Rule{Record: "slo:error_budget:ratio", Expr: num(budget), Labels: withSLO(s)},
		rulefmt.Rule{Record: "slo:time_period:days", Expr: num(sloWindow.Hours() / 24), Labels: withSLO(s)},
		rulefmt.Rule{Record: "slo:current_burn_rate:ratio",
			Expr:   fmt.Sprintf("%s%s\n/ on (sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio%s", ratioName(5*time.Minute), on, on),
			Labels: sloLabels(s)},
		rulefmt.Rule{Record: "slo:period_burn_rate:ratio",
			Expr:   fmt.Sprintf("%s%s\n/ on (sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio%s", ratioName(sloWindow), on, on),
			Labels: sloLabels(s)},
		rulefmt.Rule{Record: "slo:period_error_budget_remaining:ratio",
			Expr: fmt.Sprintf("1 - slo:period_burn_rate:ratio%s", on), Labels: sloLabels(s)},
	)
	return rulefmt.RuleGroup{Name: "vigil-slo-sli-recordings-" + s.Name, Rules: rules}
}

// withSLO is sloLabels plus the slo label (set by the sums elsewhere).
func withSLO(s Spec) map[string]string {
	l := sloLabels(s)
	l["slo"] = s.Name
	return l
}

func alertGroup(s Spec, o RuleOptions) rulefmt.RuleGroup {
	on := fmt.Sprintf("{sloth_id=%q}", "vigil-"+s.Name)
	budget := (100 - s.Objective) / 100
	var rules []rulefmt.Rule
	for _, sev := range []string{"page", "ticket"} {
		var conds []string
		var desc []string
		for _, w := range o.Windows {
			if w.Severity != sev {
				continue
			}
			f := w.Factor(time.Duration(s.Window))
			threshold := num(f * budget)
			guard := fmt.Sprintf(`sum by (slo) (increase(vigil_slo_events_total{slo=%q}[%s])) >= %s`,
				s.Name, window(w.Long), strconv.FormatFloat(o.MinEvents, 'g', -1, 64))
			conds = append(conds, fmt.Sprintf("(\n  max by (slo) (%s%s > %s)\n  and on (slo)\n  max by (slo) (%s%s > %s)\n  and on (slo)\n  %s\n)",
				ratioName(w.Long), on, threshold, ratioName(w.Short), on, threshold, guard))
			desc = append(desc, fmt.Sprintf("%s× over %s and %s", strconv.FormatFloat(f, 'g', 3, 64), window(w.Long), window(w.Short)))
		}
		if len(conds) == 0 {
			continue
		}
		title := map[string]string{"page": "Page", "ticket": "Ticket"}[sev]
		ann := map[string]string{
			"summary":     fmt.Sprintf("SLO %s is burning its error budget too fast", s.Name),
			"description": fmt.Sprintf("%s Objective %g%% over %s; burning at %s. Exact figures from ClickHouse: docs/slos.md.", s.Description, s.Objective, s.Window, strings.Join(desc, " or ")),
		}
		if o.RunbookURL != "" {
			ann["runbook_url"] = o.RunbookURL
		}
		rules = append(rules, rulefmt.Rule{
			Alert:       "VigilSLOErrorBudgetBurn" + title,
			Expr:        strings.Join(conds, "\nor\n"),
			Labels:      map[string]string{"severity": sev, "slo": s.Name, "team": "sre", "sloth_slo": s.Name, "sloth_service": "vigil"},
			Annotations: ann,
		})
	}
	return rulefmt.RuleGroup{Name: "vigil-slo-alerts-" + s.Name, Rules: rules}
}

// Marshal renders rule groups as a Prometheus rule file and checks it
// the way Prometheus loads it: rulefmt's validation with the PromQL parser.
func Marshal(groups rulefmt.RuleGroups) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Generated by `vigil rules generate`; do not edit. See docs/slos.md.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(groups); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if _, errs := rulefmt.Parse(buf.Bytes(), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil))); len(errs) > 0 {
		return nil, fmt.Errorf("slo: generated rules do not load: %w", errors.Join(errs...))
	}
	return buf.Bytes(), nil
}
