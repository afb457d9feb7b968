package slo

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as aligned text (markdown: a Markdown table).
func (r Report) WriteTable(w io.Writer, markdown bool) error {
	header := []string{"SLO", "KIND", "OBJECTIVE", "SLI", "GOOD", "BAD", "BURN", "BUDGET LEFT", "BURN 1H", "BURN 6H", "BURN 1D", "WORST"}
	var rows [][]string
	for _, s := range r.SLOs {
		burn := map[string]string{}
		for _, x := range s.Windows {
			burn[x.Window] = pct(x.BurnRate, false)
		}
		worst := "-"
		if len(s.Worst) > 0 {
			worst = fmt.Sprintf("%s (%g bad)", s.Worst[0].Start.Format("2006-01-02 15:04"), s.Worst[0].Bad)
		}
		rows = append(rows, []string{s.Name, s.Kind, fmt.Sprintf("%g%%", s.Objective), pct(s.SLI, true), num(s.Good), num(s.Bad),
			pct(s.BurnRate, false), share(s.BudgetRemaining), dash(burn["1h"]), dash(burn["6h"]), dash(burn["1d"]), worst})
	}
	if markdown {
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
		for _, row := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	for _, s := range r.SLOs {
		fmt.Fprintf(w, "%s: %s → %s", s.Name, s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
		if len(s.Percentiles) > 0 {
			fmt.Fprintf(w, "; latency p50 %g ms, p90 %g ms, p95 %g ms, p99 %g ms", s.Percentiles["p50"], s.Percentiles["p90"], s.Percentiles["p95"], s.Percentiles["p99"])
		}
		for _, sh := range s.Shares {
			fmt.Fprintf(w, "; ≤ %g ms: %.4g%%", sh.ThresholdMS, 100*sh.Share)
		}
		fmt.Fprintln(w)
	}
	for _, x := range r.Excluded {
		fmt.Fprintf(w, "excluded: %s → %s\n", x.From.Format(time.RFC3339), x.To.Format(time.RFC3339))
	}
	return nil
}

func pct(p *float64, percent bool) string {
	if p == nil {
		return "no data"
	}
	if percent {
		return fmt.Sprintf("%.4f%%", *p)
	}
	return fmt.Sprintf("%.3g×", *p)
}

func share(p *float64) string {
	if p == nil {
		return "no data"
	}
	return fmt.Sprintf("%.1f%%", 100**p)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
