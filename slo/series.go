package slo

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// BurnPoint is one step of an SLO's burn rate over time.
type BurnPoint struct {
	// Start is the step's start, aligned to the step.
	Start time.Time `json:"start"`
	// Good and Bad are the step's events, weighted by sample_rate.
	Good float64 `json:"good"`
	Bad  float64 `json:"bad"`
	// BurnRate is the step's error ratio over the error budget; 0 for a
	// step without events.
	BurnRate float64 `json:"burn_rate"`
}

// BurnSeries is one SLO's burn rate per step.
type BurnSeries struct {
	// Name is the SLO's.
	Name string `json:"name"`
	// Points are the steps with events, in time order.
	Points []BurnPoint `json:"points"`
}

// BurnSeriesOver returns, for each SLO judged per event (ratio and
// latency SLIs; enforcement SLIs are left out), its exact burn rate per
// step over [from, to), from the events in database db. Steps without
// events are left out.
func BurnSeriesOver(ctx context.Context, conn driver.Conn, specs []Spec, db string, from, to time.Time, step time.Duration) ([]BurnSeries, error) {
	secs := int64(step / time.Second)
	if secs < 1 {
		return nil, fmt.Errorf("slo: burn series step %s is under a second", step)
	}
	out := make([]BurnSeries, 0, len(specs))
	for _, s := range specs {
		if s.SLI.Enforcement != nil {
			continue
		}
		sel, err := s.selection(db)
		if err != nil {
			return nil, err
		}
		budget := (100 - s.Objective) / 100
		q := fmt.Sprintf("SELECT toUInt32(intDiv(toUInt32(time), %d) * %d) AS b, sumIf(%s, NOT (%s)), sumIf(%s, %s) FROM %s WHERE %s AND %s GROUP BY b ORDER BY b",
			secs, secs, sel.weight, sel.bad, sel.weight, sel.bad, sel.table, sel.where, timeFilter(from, to, nil))
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("slo %q: burn series: %w", s.Name, err)
		}
		bs := BurnSeries{Name: s.Name, Points: []BurnPoint{}}
		for rows.Next() {
			var (
				b    uint32
				g, x float64
			)
			if err := rows.Scan(&b, &g, &x); err != nil {
				rows.Close()
				return nil, err
			}
			p := BurnPoint{Start: time.Unix(int64(b), 0).UTC(), Good: g, Bad: x}
			if g+x > 0 {
				p.BurnRate = x / (g + x) / budget
			}
			bs.Points = append(bs.Points, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out = append(out, bs)
	}
	return out, nil
}
