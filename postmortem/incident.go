package postmortem

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/slo"
)

// IncidentOptions says what an incident report covers.
type IncidentOptions struct {
	// From and To bound the window (inclusive).
	From, To time.Time
	// Tenant limits the report to one tenant; "" is all. SLOs are computed
	// over all tenants.
	Tenant string
	// Database is vigil's database (for the SLO figures, whose queries
	// qualify their tables).
	Database string
	// SLOs are the SLO specs to report; nil means none.
	SLOs []slo.Spec
	// Top is how many sources and revocations to list; 0 means 10.
	Top int
	// Grace is the propagation allowance after a revocation before a
	// successful validation counts as the revocation not enforced; 0 means
	// 5s (the use_after_revocation detector's default).
	Grace time.Duration
	// Step is the charts' resolution; 0 picks the smallest of 1s, 5s, 10s,
	// 15s, 30s, 1m, 5m, 10m, 15m, 30m, 1h, 6h, 1d that gives at most 120
	// points.
	Step time.Duration
}

// Incident is a report a postmortem can start from.
type Incident struct {
	// From and To are the window; Tenant the tenant it is limited to ("" all).
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Tenant string    `json:"tenant"`
	// Grace is the allowance behind ValidAfterRevocation.
	Grace time.Duration `json:"grace_ns"`
	// Findings are the anomalies by detector and kind, named for people.
	Findings []Finding `json:"findings"`
	// Moments are the main events in time order.
	Moments []Moment `json:"moments"`
	// The named queries' results the report is made of.
	Events               Table `json:"events"`
	Anomalies            Table `json:"anomalies"`
	BlastRadius          Table `json:"blast_radius"`
	Revocations          Table `json:"revocations"`
	ValidAfterRevocation Table `json:"valid_after_revocation"`
	Affected             Table `json:"affected"`
	DeadLetters          Table `json:"dead_letters"`
	TopIPs               Table `json:"top_ips"`
	TopASNs              Table `json:"top_asns"`
	TopCountries         Table `json:"top_countries"`
	OverTime             Table `json:"events_over_time"`
	// SLOs are the exact SLO figures over the window; Burn their burn
	// rate per Step.
	SLOs slo.Report       `json:"slos"`
	Burn []slo.BurnSeries `json:"burn"`
	// Step is the charts' and Burn's resolution.
	Step time.Duration `json:"step_ns"`
	// Counts sums up the window.
	Counts Counts `json:"counts"`
}

// Counts are the report's headline figures.
type Counts struct {
	// Events and Failures are the window's stored events and failed ones;
	// DeadLetters the refused messages (all tenants: dead letters have none).
	Events, Failures, DeadLetters uint64
	// Anomalies are the anomalies whose first offending event is in the window.
	Anomalies uint64
	// Revoked, Suppressed, Failed and DryRun count the revocation decisions
	// by final outcome.
	Revoked, Suppressed, Failed, DryRun uint64
	// UsersAffected, SessionsAffected and IPsAffected count the distinct
	// subjects the anomalies named.
	UsersAffected, SessionsAffected, IPsAffected uint64
	// ValidAfterRevocation counts the sessions still validated after their
	// revocation and its grace.
	ValidAfterRevocation uint64
}

// Finding is one kind of anomaly found in the window.
type Finding struct {
	// Name says what it is for people, e.g. "Token theft".
	Name string `json:"name"`
	// Detector and Kind are as stored.
	Detector string `json:"detector"`
	Kind     string `json:"kind"`
	// Count is how many anomalies; Severity the worst.
	Count    uint64 `json:"count"`
	Severity string `json:"severity"`
	// FirstEvent is the first offending event; FirstDetected the first
	// detection; DetectP50 and DetectMax the detection delays.
	FirstEvent    time.Time     `json:"first_event"`
	FirstDetected time.Time     `json:"first_detected"`
	DetectP50     time.Duration `json:"detect_p50_ns"`
	DetectMax     time.Duration `json:"detect_max_ns"`
	// Users, Sessions, Families and IPs are the distinct subjects named.
	Users, Sessions, Families, IPs uint64
}

// Moment is one line of the report's timeline.
type Moment struct {
	// Time is when it happened (UTC).
	Time time.Time `json:"time"`
	// What says what happened, for people.
	What string `json:"what"`
}

// names says what each detector/kind is, for people.
var names = map[string]string{
	"token_reuse/replay_other_client":              "Token theft: a rotated refresh token replayed from another client",
	"token_reuse/replay_after_leeway":              "Token theft: a rotated refresh token replayed after the leeway",
	"token_reuse/replay_older_generation":          "Token theft: an older refresh token generation replayed",
	"token_reuse/replay_reported":                  "Token theft: reuse reported by the session service",
	"session_hijack/impossible_travel":             "Session hijack: impossible travel",
	"session_hijack/concurrent_countries":          "Session hijack: one session used from two countries at once",
	"session_hijack/concurrent_clients":            "Session hijack: one session used from two clients at once",
	"use_after_revocation/revocation_not_enforced": "Revocation not enforced: a revoked session still validated",
	"login_storm/credential_stuffing":              "Credential-stuffing wave",
	"login_storm/password_spraying":                "Password spraying",
	"login_storm/brute_force":                      "Brute force on one account",
	"login_storm/reconnect_storm":                  "Reconnect storm (logins surging after an outage)",
	"session_churn/end_burst":                      "Burst of session ends (expiries or revocations)",
	"session_churn/short_sessions":                 "Sessions living only seconds",
	"session_churn/session_flood":                  "One user creating many sessions",
	"session_churn/refresh_loop":                   "Refresh loop",
	"revoker/revocation_halted":                    "Revoker halted by the blast-radius cap",
	"revoker/revocation_failed":                    "Revocation failed",
}

// Name says what an anomaly of detector and kind is, for people.
func Name(detector, kind string) string {
	if n, ok := names[detector+"/"+kind]; ok {
		return n
	}
	return detector + "/" + kind
}

// BuildIncident runs the named queries over the window and assembles the
// report.
func BuildIncident(ctx context.Context, conn driver.Conn, o IncidentOptions) (Incident, error) {
	if !o.To.After(o.From) {
		return Incident{}, fmt.Errorf("postmortem: the window ends (%s) before it starts (%s)", o.To.Format(time.RFC3339), o.From.Format(time.RFC3339))
	}
	if o.Top <= 0 {
		o.Top = 10
	}
	if o.Step <= 0 {
		o.Step = pickStep(o.To.Sub(o.From))
	}
	o.Step = max(o.Step.Truncate(time.Second), time.Second)
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	inc := Incident{From: o.From.UTC(), To: o.To.UTC(), Tenant: o.Tenant, Step: o.Step, Grace: o.Grace}
	window := map[string]string{"from": o.From.UTC().Format(time.RFC3339), "to": o.To.UTC().Format(time.RFC3339)}
	with := func(extra ...string) map[string]string {
		m := map[string]string{"from": window["from"], "to": window["to"]}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	top := strconv.Itoa(o.Top)
	for _, r := range []struct {
		dst    *Table
		name   string
		params map[string]string
	}{
		{&inc.Events, "incident_events", with("tenant", o.Tenant)},
		{&inc.Anomalies, "incident_anomalies", with("tenant", o.Tenant)},
		{&inc.BlastRadius, "revocation_blast_radius", with("tenant", o.Tenant)},
		{&inc.Revocations, "revocations", with("tenant", o.Tenant)},
		{&inc.ValidAfterRevocation, "valid_after_revocation", with("tenant", o.Tenant, "grace_ms", strconv.FormatInt(o.Grace.Milliseconds(), 10))},
		{&inc.Affected, "affected_subjects", with("tenant", o.Tenant)},
		{&inc.DeadLetters, "dead_letters", with()},
		{&inc.TopIPs, "top_failed_login_sources", with("by", "ip", "tenant", o.Tenant, "limit", top)},
		{&inc.TopASNs, "top_failed_login_sources", with("by", "asn", "tenant", o.Tenant, "limit", top)},
		{&inc.TopCountries, "top_failed_login_sources", with("by", "country", "tenant", o.Tenant, "limit", top)},
		{&inc.OverTime, "events_over_time", with("tenant", o.Tenant, "step_s", strconv.Itoa(int(o.Step/time.Second)))},
	} {
		t, err := Run(ctx, conn, r.name, r.params)
		if err != nil {
			return Incident{}, err
		}
		*r.dst = t
	}
	if len(o.SLOs) > 0 {
		var err error
		if inc.SLOs, err = slo.BuildReport(ctx, conn, o.SLOs, slo.ReportOptions{Database: o.Database, From: o.From, To: o.To.Add(time.Second)}); err != nil {
			return Incident{}, err
		}
		if inc.Burn, err = slo.BurnSeriesOver(ctx, conn, o.SLOs, o.Database, o.From, o.To.Add(time.Second), o.Step); err != nil {
			return Incident{}, err
		}
	}
	inc.findings()
	inc.count()
	inc.moments()
	return inc, nil
}

// pickStep is the smallest round step giving at most 120 points over d.
func pickStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour} {
		if d/s <= 120 {
			return s
		}
	}
	return 24 * time.Hour
}

func u64(v any) uint64 {
	switch x := v.(type) {
	case uint64:
		return x
	case uint32:
		return uint64(x)
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case int64:
		return uint64(max(x, 0))
	}
	return 0
}

func f64(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	}
	return float64(u64(v))
}

func tm(v any) time.Time { t, _ := v.(time.Time); return t }

func (inc *Incident) findings() {
	a := inc.Anomalies
	for _, r := range a.Rows {
		get := func(c string) any { return r[a.Col(c)] }
		det, kind := Text(get("detector")), Text(get("kind"))
		inc.Findings = append(inc.Findings, Finding{
			Name: Name(det, kind), Detector: det, Kind: kind, Count: u64(get("anomalies")), Severity: Text(get("max_severity")),
			FirstEvent: tm(get("first_event")), FirstDetected: tm(get("first_detected")),
			DetectP50: time.Duration(f64(get("detect_p50_ms")) * float64(time.Millisecond)),
			DetectMax: time.Duration(f64(get("detect_max_ms")) * float64(time.Millisecond)),
			Users:     u64(get("users")), Sessions: u64(get("sessions")), Families: u64(get("families")), IPs: u64(get("ips")),
		})
	}
}

func (inc *Incident) count() {
	c := &inc.Counts
	for _, r := range inc.Events.Rows {
		c.Events += u64(r[inc.Events.Col("events")])
		c.Failures += u64(r[inc.Events.Col("failures")])
	}
	for _, f := range inc.Findings {
		c.Anomalies += f.Count
	}
	b := inc.BlastRadius
	for _, r := range b.Rows {
		n := u64(r[b.Col("actions")])
		switch Text(r[b.Col("outcome")]) {
		case "succeeded":
			c.Revoked += n
		case "suppressed":
			c.Suppressed += n
		case "failed":
			c.Failed += n
		case "dry_run":
			c.DryRun += n
		}
	}
	for _, r := range inc.Affected.Rows {
		switch Text(r[inc.Affected.Col("kind")]) {
		case "user":
			c.UsersAffected++
		case "session":
			c.SessionsAffected++
		case "ip":
			c.IPsAffected++
		}
	}
	for _, r := range inc.DeadLetters.Rows {
		c.DeadLetters += u64(r[inc.DeadLetters.Col("messages")])
	}
	c.ValidAfterRevocation = uint64(len(inc.ValidAfterRevocation.Rows))
}

// moments picks the main events: when each kind of anomaly started and
// was detected, the first and last revocation, suppressed and failed
// actions, sessions valid after revocation, the first dead letter, and
// each SLO's worst step.
func (inc *Incident) moments() {
	add := func(t time.Time, format string, args ...any) {
		if !t.IsZero() {
			inc.Moments = append(inc.Moments, Moment{Time: t.UTC(), What: fmt.Sprintf(format, args...)})
		}
	}
	for _, f := range inc.Findings {
		add(f.FirstEvent, "%s starts (%s/%s): %d anomal%s, detected in %s (median)", f.Name, f.Detector, f.Kind, f.Count, plural(f.Count, "y", "ies"), ms(f.DetectP50))
	}
	rv := inc.Revocations
	var first, last []any
	n := 0
	for _, r := range rv.Rows {
		switch Text(r[rv.Col("outcome")]) {
		case "succeeded":
			if first == nil {
				first = r
			}
			last = r
			n++
		case "suppressed", "failed":
			add(tm(r[rv.Col("time")]), "%s %s %s (%s)", Text(r[rv.Col("action")]), subjectOf(rv, r),
				Text(r[rv.Col("outcome")]), strings.TrimSpace(Text(r[rv.Col("guardrail")])+" "+Text(r[rv.Col("error")])))
		}
	}
	if first != nil {
		add(tm(first[rv.Col("time")]), "first revocation: %s %s, %s ms after its first offending event", Text(first[rv.Col("action")]), subjectOf(rv, first), Text(first[rv.Col("time_to_revoke_ms")]))
	}
	if n > 1 {
		add(tm(last[rv.Col("time")]), "last of %d revocations: %s %s", n, Text(last[rv.Col("action")]), subjectOf(rv, last))
	}
	va := inc.ValidAfterRevocation
	for _, r := range va.Rows {
		add(tm(r[va.Col("first_valid_after")]), "session %s still valid %s ms after its revocation (%s validation%s after it)", Text(r[va.Col("session_id")]), Text(r[va.Col("after_ms")]),
			Text(r[va.Col("validations_after")]), plural(u64(r[va.Col("validations_after")]), "", "s"))
	}
	var dlq time.Time
	for _, r := range inc.DeadLetters.Rows {
		if t := tm(r[inc.DeadLetters.Col("first")]); dlq.IsZero() || t.Before(dlq) {
			dlq = t
		}
	}
	add(dlq, "first of %d dead letters", inc.Counts.DeadLetters)
	for _, s := range inc.Burn {
		var worst slo.BurnPoint
		for _, p := range s.Points {
			if p.BurnRate > worst.BurnRate {
				worst = p
			}
		}
		if worst.BurnRate >= 1 {
			add(worst.Start, "SLO %s burns fastest: %.1f× its budget rate (%.0f bad of %.0f events)", s.Name, worst.BurnRate, worst.Bad, worst.Good+worst.Bad)
		}
	}
	slices.SortStableFunc(inc.Moments, func(a, b Moment) int { return a.Time.Compare(b.Time) })
}

func subjectOf(t Table, r []any) string {
	switch Text(r[t.Col("scope")]) {
	case "family":
		return "family " + Text(r[t.Col("family_id")])
	case "session":
		return "session " + Text(r[t.Col("session_id")])
	}
	return "user " + Text(r[t.Col("user_id")])
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ms formats a duration in milliseconds, or seconds from 10 s.
func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + " ms"
}

// Headline is the report's one-paragraph summary.
func (inc Incident) Headline() string {
	c := inc.Counts
	var b strings.Builder
	fmt.Fprintf(&b, "%d events (%d failures)", c.Events, c.Failures)
	if c.Anomalies == 0 {
		b.WriteString(", no anomaly")
	} else {
		fmt.Fprintf(&b, ", %d anomal%s of %d kind%s", c.Anomalies, plural(c.Anomalies, "y", "ies"), len(inc.Findings), plural(uint64(len(inc.Findings)), "", "s"))
	}
	fmt.Fprintf(&b, "; %d revocation%s made", c.Revoked, plural(c.Revoked, "", "s"))
	if c.Suppressed+c.Failed+c.DryRun > 0 {
		fmt.Fprintf(&b, " (%d suppressed by guardrails, %d failed, %d dry-run)", c.Suppressed, c.Failed, c.DryRun)
	}
	fmt.Fprintf(&b, "; %d user%s, %d session%s and %d address%s named by anomalies", c.UsersAffected, plural(c.UsersAffected, "", "s"),
		c.SessionsAffected, plural(c.SessionsAffected, "", "s"), c.IPsAffected, plural(c.IPsAffected, "", "es"))
	if c.ValidAfterRevocation > 0 {
		fmt.Fprintf(&b, "; %d session%s still valid after revocation", c.ValidAfterRevocation, plural(c.ValidAfterRevocation, "", "s"))
	}
	fmt.Fprintf(&b, "; %d dead letter%s.", c.DeadLetters, plural(c.DeadLetters, "", "s"))
	return b.String()
}
