package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/config"
)

func cmdBacktest() command {
	c := command{name: "backtest", summary: "run the window detectors over stored history and report what they would have raised", usage: `
Usage:
  vigil backtest --from T1 [--to T2] [--detector login_storm|session_churn]
                 [--warmup 1h] [--format table|json] [--config FILE]

Judges every window ending between T1 and T2 (RFC 3339) exactly as the
live window detectors would have (same windows, baselines and episodes,
so the same anomaly ids), and prints what they would have raised, marking
those the live detectors did raise (LIVE yes). The --warmup before T1 is
judged too but not reported, so an attack already under way at T1 is the
episode the live detectors had, not a new one. T2 (default now) is held to
the watermark: windows the stored events do not complete yet are left out.
Nothing is written and nothing acts: try new thresholds in a config file
(or VIGIL_DETECT_* variables) and see, on real history, what they would
have paged about before turning them on.

Examples:
  vigil backtest --from 2026-11-01T00:00:00Z --to 2026-11-08T00:00:00Z
  VIGIL_DETECT_LOGIN_STORM_STUFFING_MIN_TARGETS=15 vigil backtest --detector login_storm \
      --from 2026-11-22T00:00:00Z --to 2026-11-23T00:00:00Z --format json`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		fromS := fs.String("from", "", "start of the history to judge, RFC 3339 (required)")
		toS := fs.String("to", "", "end of the history to judge, RFC 3339 (default now)")
		only := fs.String("detector", "", "judge only this window detector: login_storm or session_churn")
		warmup := fs.Duration("warmup", time.Hour, "history judged before --from, not reported (episodes under way at --from)")
		format := fs.String("format", "table", "table or json")
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		if *format != "table" && *format != "json" {
			return errUsage("--format must be table or json, got %q", *format)
		}
		if *fromS == "" {
			return errUsage("--from is required")
		}
		from, err := time.Parse(time.RFC3339, *fromS)
		if err != nil {
			return errUsage("--from: %v", err)
		}
		to := time.Now()
		if *toS != "" {
			if to, err = time.Parse(time.RFC3339, *toS); err != nil {
				return errUsage("--to: %v", err)
			}
		}
		if !from.Before(to) {
			return errUsage("--from must be before --to (default now)")
		}
		if *warmup < 0 {
			return errUsage("--warmup must not be negative, got %s", *warmup)
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		switch *only {
		case "":
		case detect.LoginStorm:
			cfg.Detect.SessionChurn.Enabled = false
		case detect.SessionChurn:
			cfg.Detect.LoginStorm.Enabled = false
		default:
			return errUsage("--detector must be %s or %s, got %q", detect.LoginStorm, detect.SessionChurn, *only)
		}
		conn, err := openClickHouse(ctx, cfg.ClickHouse, env.getenv)
		if err != nil {
			return err
		}
		defer conn.Close()
		w, err := detect.NewWindows(cfg.Detect, detect.WindowOptions{Conn: conn, Database: cfg.ClickHouse.Database})
		if err != nil {
			return err
		}
		if w == nil {
			return errUsage("no window detector is enabled (detect.login_storm.enabled, detect.session_churn.enabled)")
		}
		// Hold --to to the watermark, as the live runner would.
		times, err := detect.PartitionTimes(ctx, conn, cfg.ClickHouse.Database, time.Time{})
		if err != nil {
			return err
		}
		wm, ok := detect.NewWatermark(cfg.Detect.Window.Lateness, cfg.Detect.Window.IdleAfter).Update(times, time.Now())
		if !ok {
			return fmt.Errorf("no stored events in database %s", cfg.ClickHouse.Database)
		}
		if wm.Before(to) {
			fmt.Fprintf(env.stderr, "note: --to held to the watermark %s: later windows are not complete yet\n", wm.UTC().Format(time.RFC3339))
			to = wm
			if !from.Before(to) {
				return errUsage("--from is after the watermark %s: nothing is complete to judge", wm.UTC().Format(time.RFC3339))
			}
		}
		t0 := time.Now()
		all, err := w.Evaluate(ctx, from.Add(-*warmup), to)
		if err != nil {
			return err
		}
		as := slices.DeleteFunc(all, func(a detect.Anomaly) bool { return !a.WindowEnd.After(from) })
		live, err := w.Known(ctx, ids(as))
		if err != nil {
			return err
		}
		if *format == "json" {
			return writeBacktestJSON(env.stdout, as, live)
		}
		return writeBacktestTable(env.stdout, as, live, from, to, time.Since(t0))
	}
	return c
}

func ids(as []detect.Anomaly) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

// backtestAnomaly is one anomaly in `vigil backtest --format json`.
type backtestAnomaly struct {
	ID             string          `json:"id"`
	Detector       string          `json:"detector"`
	Kind           string          `json:"kind"`
	Severity       string          `json:"severity"`
	Shadow         bool            `json:"shadow"`
	Tenant         string          `json:"tenant"`
	UserID         string          `json:"user_id,omitempty"`
	SessionID      string          `json:"session_id,omitempty"`
	FamilyID       string          `json:"family_id,omitempty"`
	IP             string          `json:"ip,omitempty"`
	FirstEventTime time.Time       `json:"first_event_time"`
	WindowStart    time.Time       `json:"window_start"`
	WindowEnd      time.Time       `json:"window_end"`
	Evidence       json.RawMessage `json:"evidence"`
	Live           bool            `json:"live"` // the live detectors raised it too
}

func writeBacktestJSON(w io.Writer, as []detect.Anomaly, live map[string]bool) error {
	out := make([]backtestAnomaly, len(as))
	for i, a := range as {
		out[i] = backtestAnomaly{
			ID: a.ID, Detector: a.Detector, Kind: a.Kind, Severity: a.Severity.String(), Shadow: a.Shadow, Tenant: a.Tenant,
			UserID: a.UserID, SessionID: a.SessionID, FamilyID: a.FamilyID, IP: a.IP, FirstEventTime: a.FirstEventTime,
			WindowStart: a.WindowStart, WindowEnd: a.WindowEnd, Evidence: json.RawMessage(a.Evidence), Live: live[a.ID],
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"anomalies": out})
}

func writeBacktestTable(w io.Writer, as []detect.Anomaly, live map[string]bool, from, to time.Time, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WINDOW END\tDETECTOR\tKIND\tSEVERITY\tTENANT\tSUBJECT\tLIVE\tID")
	counts := map[string]int{}
	for _, a := range as {
		subject := "-"
		switch {
		case a.UserID != "":
			subject = "user " + a.UserID
		case a.FamilyID != "":
			subject = "family " + a.FamilyID
		case a.IP != "":
			subject = "ip " + a.IP
		}
		l := "no"
		if live[a.ID] {
			l = "yes"
		}
		sev := a.Severity.String()
		if a.Shadow {
			sev += " (shadow)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.WindowEnd.UTC().Format(time.RFC3339), a.Detector, a.Kind, sev,
			orDash(a.Tenant), subject, l, a.ID)
		counts[a.Detector+"/"+a.Kind]++
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	summary := "nothing"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	_, err := fmt.Fprintf(w, "\n%d anomalies would have been raised between %s and %s (%s); judged in %s\n",
		len(as), from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), summary, took.Round(time.Millisecond))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
