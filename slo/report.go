package slo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Interval is a half-open time interval [From, To).
type Interval struct {
	From, To time.Time
}

// ReportOptions says what a report covers.
type ReportOptions struct {
	// Database holds the events (and anomalies) tables.
	Database string
	// From and To bound the report; a zero From means each SLO's own window before To.
	From, To time.Time
	// Exclude takes intervals out of every figure (maintenance windows).
	Exclude []Interval
	// Worst is how many worst buckets to list; 0 means 5.
	Worst int
	// Thresholds are extra latency thresholds (ms) whose shares latency SLOs report.
	Thresholds []float64
	// TimeZone is the IANA zone the worst hours and days are cut in; "" is UTC.
	TimeZone string
}

// SLOReport is the exact compliance of one SLO over the report interval.
type SLOReport struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // ratio, latency or enforcement
	Objective float64   `json:"objective"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	// Good and Bad are the events (weighted by sample_rate) in the interval.
	Good float64 `json:"good"`
	Bad  float64 `json:"bad"`
	// SLI is the good share in percent; nil when there were no events.
	SLI *float64 `json:"sli"`
	// BurnRate is the error ratio over the error budget (1 spends the budget exactly by the end of the window).
	BurnRate *float64 `json:"burn_rate"`
	// BudgetConsumed is the share of the interval's error budget its bad events spent; BudgetRemaining is 1 minus it.
	BudgetConsumed  *float64 `json:"budget_consumed"`
	BudgetRemaining *float64 `json:"budget_remaining"`
	// Windows are the burn rates over the alert windows ending at To.
	Windows []WindowBurn `json:"windows"`
	// Worst are the buckets (hours, or days for intervals over two days, in ReportOptions.TimeZone) with the most bad events.
	Worst []Bucket `json:"worst"`
	// Percentiles are exact latency percentiles in ms (latency SLOs), weighted by sample_rate.
	Percentiles map[string]float64 `json:"percentiles,omitempty"`
	// Shares are the shares of events at or under each latency threshold (latency SLOs).
	Shares []Share `json:"shares,omitempty"`
}

// WindowBurn is the burn rate over one window ending at the report's end.
type WindowBurn struct {
	Window   string   `json:"window"`
	Good     float64  `json:"good"`
	Bad      float64  `json:"bad"`
	BurnRate *float64 `json:"burn_rate"` // nil without events
	// Clipped is set when the window reaches back before the report's start and was cut there.
	Clipped bool `json:"clipped"`
}

// Bucket is one interval of the worst list.
type Bucket struct {
	Start time.Time `json:"start"`
	Good  float64   `json:"good"`
	Bad   float64   `json:"bad"`
}

// Share is the share of latency events at or under a threshold.
type Share struct {
	ThresholdMS float64 `json:"threshold_ms"`
	Share       float64 `json:"share"` // 0..1
}

// Report is a report over several SLOs.
type Report struct {
	Excluded []Interval  `json:"excluded"`
	SLOs     []SLOReport `json:"slos"`
}

// selection is an SLO's events, and its bad ones, as SQL.
type selection struct {
	table, where, bad, weight string
}

func (s Spec) selection(db string) (selection, error) {
	switch {
	case s.SLI.Ratio != nil:
		return selection{table: db + ".events FINAL", where: "type IN (" + quoted(s.SLI.Ratio.Events) + ")",
			bad:    "(outcome = 'failure' OR type IN ('login.failed', 'token.refresh_failed')) AND reason IN (" + quoted(s.SLI.Ratio.BadReasons) + ")",
			weight: "sample_rate"}, nil
	case s.SLI.Latency != nil:
		return selection{table: db + ".events FINAL", where: "type IN (" + quoted(s.SLI.Latency.Events) + ") AND latency_ms IS NOT NULL",
			bad: fmt.Sprintf("assumeNotNull(latency_ms) > %s", num(s.SLI.Latency.ThresholdMS)), weight: "sample_rate"}, nil
	}
	return selection{}, fmt.Errorf("slo %q: enforcement SLIs are reported from revocations and anomalies", s.Name)
}

// timeFilter is the SQL for [from, to) minus the exclusions, on time_ns
// (with the DateTime column for partition pruning).
func timeFilter(from, to time.Time, exclude []Interval) string {
	f := fmt.Sprintf("time >= toDateTime(%d) AND time <= toDateTime(%d) AND time_ns >= %d AND time_ns < %d",
		from.Unix(), to.Unix(), from.UnixNano(), to.UnixNano())
	for _, x := range exclude {
		f += fmt.Sprintf(" AND NOT (time_ns >= %d AND time_ns < %d)", x.From.UnixNano(), x.To.UnixNano())
	}
	return f
}

// count returns the good and bad weights of sel over [from, to) minus exclude.
func count(ctx context.Context, conn driver.Conn, sel selection, from, to time.Time, exclude []Interval) (good, bad float64, err error) {
	q := fmt.Sprintf("SELECT sumIf(%s, NOT (%s)), sumIf(%s, %s) FROM %s WHERE %s AND %s",
		sel.weight, sel.bad, sel.weight, sel.bad, sel.table, sel.where, timeFilter(from, to, exclude))
	if err := conn.QueryRow(ctx, q).Scan(&good, &bad); err != nil {
		return 0, 0, err
	}
	return good, bad, nil
}

// BuildReport computes each SLO's exact compliance over the options'
// interval from ClickHouse.
func BuildReport(ctx context.Context, conn driver.Conn, specs []Spec, o ReportOptions) (Report, error) {
	if err := Validate(specs); err != nil {
		return Report{}, err
	}
	if o.To.IsZero() {
		o.To = time.Now()
	}
	if o.Worst == 0 {
		o.Worst = 5
	}
	for _, x := range o.Exclude {
		if !x.From.Before(x.To) {
			return Report{}, fmt.Errorf("slo report: excluded interval %s/%s is empty", x.From.Format(time.RFC3339), x.To.Format(time.RFC3339))
		}
	}
	rep := Report{Excluded: o.Exclude, SLOs: []SLOReport{}}
	if rep.Excluded == nil {
		rep.Excluded = []Interval{}
	}
	for _, s := range specs {
		r, err := reportOne(ctx, conn, s, o)
		if err != nil {
			return Report{}, fmt.Errorf("slo %q: %w", s.Name, err)
		}
		rep.SLOs = append(rep.SLOs, r)
	}
	return rep, nil
}

func reportOne(ctx context.Context, conn driver.Conn, s Spec, o ReportOptions) (SLOReport, error) {
	from := o.From
	if from.IsZero() {
		from = o.To.Add(-time.Duration(s.Window))
	}
	r := SLOReport{Name: s.Name, Objective: s.Objective, From: from.UTC(), To: o.To.UTC(), Windows: []WindowBurn{}, Worst: []Bucket{}}
	budget := (100 - s.Objective) / 100
	if s.SLI.Enforcement != nil {
		// Each revoked family once (its first revocation in the interval);
		// it is bad when a successful use came more than `within` after it.
		r.Kind = "enforcement"
		within := time.Duration(s.SLI.Enforcement.Within).Nanoseconds()
		q := fmt.Sprintf(`SELECT count(), countIf(last_use_ns > revoked_ns + %d) FROM (
			SELECT tenant, family_id, min(time_ns) AS revoked_ns FROM %s.events FINAL
			WHERE type = 'session.revoked' AND family_id != '' AND %s GROUP BY tenant, family_id
		) ANY LEFT JOIN (
			SELECT tenant, family_id, max(time_ns) AS last_use_ns FROM %s.events FINAL
			WHERE (type = 'session.validated' AND outcome = 'success' OR type = 'token.refreshed')
			  AND family_id != '' AND time >= toDateTime(%d) GROUP BY tenant, family_id
		) USING (tenant, family_id)`, within, o.Database, timeFilter(from, o.To, o.Exclude), o.Database, from.Unix())
		var revoked, violated uint64
		if err := conn.QueryRow(ctx, q).Scan(&revoked, &violated); err != nil {
			return r, err
		}
		r.Good, r.Bad = float64(revoked-violated), float64(violated)
		r.fill(budget)
		return r, nil
	}
	sel, err := s.selection(o.Database)
	if err != nil {
		return r, err
	}
	r.Kind = "ratio"
	if s.SLI.Latency != nil {
		r.Kind = "latency"
	}
	if r.Good, r.Bad, err = count(ctx, conn, sel, from, o.To, o.Exclude); err != nil {
		return r, err
	}
	r.fill(budget)
	for _, w := range RatioWindows {
		start := o.To.Add(-w)
		clipped := start.Before(from)
		if clipped {
			start = from
		}
		g, b, err := count(ctx, conn, sel, start, o.To, o.Exclude)
		if err != nil {
			return r, err
		}
		wb := WindowBurn{Window: window(w), Good: g, Bad: b, Clipped: clipped}
		if g+b > 0 {
			wb.BurnRate = ptr(b / (g + b) / budget)
		}
		r.Windows = append(r.Windows, wb)
	}
	tz := o.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	bucket := fmt.Sprintf("toStartOfHour(time, %s)", quoted([]string{tz}))
	if o.To.Sub(from) > 48*time.Hour {
		bucket = fmt.Sprintf("toStartOfDay(time, %s)", quoted([]string{tz}))
	}
	q := fmt.Sprintf(`SELECT toUnixTimestamp(%s) AS b, sumIf(%s, NOT (%s)) AS good, sumIf(%s, %s) AS bad
		FROM %s WHERE %s AND %s GROUP BY b HAVING bad > 0 ORDER BY bad DESC, b LIMIT %d`,
		bucket, sel.weight, sel.bad, sel.weight, sel.bad, sel.table, sel.where, timeFilter(from, o.To, o.Exclude), o.Worst)
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var (
			b    uint32
			g, x float64
		)
		if err := rows.Scan(&b, &g, &x); err != nil {
			rows.Close()
			return r, err
		}
		r.Worst = append(r.Worst, Bucket{Start: time.Unix(int64(b), 0).UTC(), Good: g, Bad: x})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, err
	}
	if s.SLI.Latency != nil && r.Good+r.Bad > 0 {
		var qs []float64
		q := fmt.Sprintf(`SELECT quantilesExactWeighted(0.5, 0.9, 0.95, 0.99)(assumeNotNull(latency_ms), toUInt64(round(least(sample_rate, 1e12) * 1000))) FROM %s WHERE %s AND %s`,
			sel.table, sel.where, timeFilter(from, o.To, o.Exclude))
		if err := conn.QueryRow(ctx, q).Scan(&qs); err != nil {
			return r, err
		}
		r.Percentiles = map[string]float64{}
		for i, p := range []string{"p50", "p90", "p95", "p99"} {
			if i < len(qs) {
				r.Percentiles[p] = qs[i]
			}
		}
		for _, th := range append([]float64{s.SLI.Latency.ThresholdMS}, o.Thresholds...) {
			var share float64
			q := fmt.Sprintf(`SELECT sumIf(sample_rate, assumeNotNull(latency_ms) <= %s) / sum(sample_rate) FROM %s WHERE %s AND %s`,
				num(th), sel.table, sel.where, timeFilter(from, o.To, o.Exclude))
			if err := conn.QueryRow(ctx, q).Scan(&share); err != nil {
				return r, err
			}
			r.Shares = append(r.Shares, Share{ThresholdMS: th, Share: share})
		}
	}
	return r, nil
}

// fill derives the SLI, burn rate and budget from Good and Bad.
func (r *SLOReport) fill(budget float64) {
	total := r.Good + r.Bad
	if total == 0 {
		return
	}
	r.SLI = ptr(100 * r.Good / total)
	burn := r.Bad / total / budget
	r.BurnRate = ptr(burn)
	r.BudgetConsumed = ptr(burn)
	r.BudgetRemaining = ptr(1 - burn)
}

func ptr[T any](v T) *T { return &v }

// quoted renders strings as a ClickHouse list of string literals.
func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	return strings.Join(q, ", ")
}
