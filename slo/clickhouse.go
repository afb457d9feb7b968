package slo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Counts returns the exact weighted good and bad event counts of a ratio
// or latency SLO over [from, to) from the events table of db, each event
// counted once (FINAL collapses replays). Enforcement SLIs are not counted
// here yet.
func Counts(ctx context.Context, conn driver.Conn, db string, s Spec, from, to time.Time) (good, bad float64, err error) {
	var types []string
	var badExpr string
	switch {
	case s.SLI.Ratio != nil:
		types = s.SLI.Ratio.Events
		badExpr = "(outcome = 'failure' OR type IN ('login.failed', 'token.refresh_failed')) AND reason IN (" + quoted(s.SLI.Ratio.BadReasons) + ")"
	case s.SLI.Latency != nil:
		types = s.SLI.Latency.Events
		badExpr = fmt.Sprintf("latency_ms > %g", s.SLI.Latency.ThresholdMS)
	default:
		return 0, 0, fmt.Errorf("slo %q: only ratio and latency SLIs are counted from events", s.Name)
	}
	where := "type IN (" + quoted(types) + ") AND time >= toDateTime(?) AND time < toDateTime(?) AND time_ns >= ? AND time_ns < ?"
	if s.SLI.Latency != nil {
		where += " AND latency_ms IS NOT NULL"
	}
	q := "SELECT sumIf(sample_rate, NOT (" + badExpr + ")), sumIf(sample_rate, " + badExpr + ") FROM " + db + ".events FINAL WHERE " + where
	err = conn.QueryRow(ctx, q, from.Unix(), to.Unix()+1, from.UnixNano(), to.UnixNano()).Scan(&good, &bad)
	if err != nil {
		return 0, 0, fmt.Errorf("slo %q: count events in %s.events: %w", s.Name, db, err)
	}
	return good, bad, nil
}

// quoted renders strings as a ClickHouse list of string literals.
func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	return strings.Join(q, ", ")
}
