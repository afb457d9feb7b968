package main

import (
	"context"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // --tz works on machines without a zoneinfo database

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/slo"
)

// intervals is a repeatable --exclude flag of T1/T2 intervals.
type intervals []slo.Interval

func (v *intervals) String() string { return fmt.Sprint(len(*v), " intervals") }

func (v *intervals) Set(s string) error {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("want T1/T2 (RFC 3339), got %q", s)
	}
	from, err := time.Parse(time.RFC3339, a)
	if err != nil {
		return err
	}
	to, err := time.Parse(time.RFC3339, b)
	if err != nil {
		return err
	}
	if !from.Before(to) {
		return fmt.Errorf("%q: the interval is empty", s)
	}
	*v = append(*v, slo.Interval{From: from, To: to})
	return nil
}

func cmdSLO() command {
	c := command{name: "slo", summary: "exact SLIs, burn rates and error budgets for any past window, from ClickHouse", usage: `
Usage:
  vigil slo report [--from T1] [--to T2 | --month 2026-10 [--tz Europe/Berlin]]
                   [--slo NAME] [--exclude T1/T2 ...] [--threshold MS ...]
                   [--format table|json|md] [--config FILE]

Computes each SLO (the seed SLOs, or the config's slo.spec_file) exactly
from the stored events — every event once, weighted by its sample_rate:
the SLI, the burn rate and the budget consumed and left over the interval,
the burn rate over the alert windows ending at its end, the hours (or days)
with the most bad events, and for latency SLOs exact percentiles and the
share under any threshold. Without --from the interval is each SLO's own
window before --to (default now); --month is a calendar month in --tz.
--exclude takes a maintenance window out of every figure.

Examples:
  vigil slo report --config vigil.yaml
  vigil slo report --month 2026-10 --tz Europe/Berlin --format md
  vigil slo report --slo validation-success --from 2026-11-01T00:00:00Z --to 2026-11-08T00:00:00Z \
      --exclude 2026-11-03T02:00:00Z/2026-11-03T03:00:00Z
  vigil slo report --slo issuance-latency --threshold 100 --threshold 500 --format json`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		if len(args) == 0 || args[0] != "report" {
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
				newFlags(&c, env).Usage()
				return nil
			}
			return errUsage("usage: vigil slo report [flags]")
		}
		fs := newFlags(&c, env)
		fromS := fs.String("from", "", "start of the interval, RFC 3339 (default: each SLO's window before --to)")
		toS := fs.String("to", "", "end of the interval, RFC 3339 (default now)")
		month := fs.String("month", "", "a calendar month YYYY-MM instead of --from/--to")
		tz := fs.String("tz", "UTC", "time zone of --month")
		name := fs.String("slo", "", "report only this SLO")
		format := fs.String("format", "table", "table, json or md")
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		var exclude intervals
		fs.Var(&exclude, "exclude", "T1/T2 (RFC 3339) to take out of every figure; repeatable")
		var thresholds floats
		fs.Var(&thresholds, "threshold", "extra latency threshold in ms for latency SLOs; repeatable")
		if done, err := parseFlags(fs, args[1:]); done {
			return err
		}
		if *format != "table" && *format != "json" && *format != "md" {
			return errUsage("--format must be table, json or md, got %q", *format)
		}
		var o slo.ReportOptions
		var err error
		switch {
		case *month != "":
			if *fromS != "" || *toS != "" {
				return errUsage("--month excludes --from and --to")
			}
			loc, err := time.LoadLocation(*tz)
			if err != nil {
				return errUsage("--tz: %v", err)
			}
			m, err := time.ParseInLocation("2006-01", *month, loc)
			if err != nil {
				return errUsage("--month: want YYYY-MM, got %q", *month)
			}
			o.From, o.To = m, m.AddDate(0, 1, 0)
		default:
			if *tz != "UTC" {
				return errUsage("--tz applies to --month only; give --from/--to with their offsets")
			}
			if *fromS != "" {
				if o.From, err = time.Parse(time.RFC3339, *fromS); err != nil {
					return errUsage("--from: %v", err)
				}
			}
			if *toS != "" {
				if o.To, err = time.Parse(time.RFC3339, *toS); err != nil {
					return errUsage("--to: %v", err)
				}
			}
			end := o.To
			if end.IsZero() {
				end = time.Now()
			}
			if !o.From.IsZero() && !o.From.Before(end) {
				return errUsage("--from must be before --to (default now)")
			}
		}
		o.Exclude, o.Thresholds, o.TimeZone = exclude, thresholds, *tz
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		o.Database = cfg.ClickHouse.Database
		specs, err := slo.Configured(cfg.SLO.SpecFile)
		if err != nil {
			return err
		}
		if *name != "" {
			var picked []slo.Spec
			var names []string
			for _, s := range specs {
				names = append(names, s.Name)
				if s.Name == *name {
					picked = append(picked, s)
				}
			}
			if len(picked) == 0 {
				return errUsage("--slo: no SLO named %q (have: %s)", *name, strings.Join(names, ", "))
			}
			specs = picked
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		conn, err := openClickHouse(ctx, cfg.ClickHouse, env.getenv)
		if err != nil {
			return err
		}
		defer conn.Close()
		rep, err := slo.BuildReport(ctx, conn, specs, o)
		if err != nil {
			return err
		}
		if *format == "json" {
			return rep.WriteJSON(env.stdout)
		}
		return rep.WriteTable(env.stdout, *format == "md")
	}
	return c
}

// floats is a repeatable float flag.
type floats []float64

func (v *floats) String() string { return fmt.Sprint([]float64(*v)) }

func (v *floats) Set(s string) error {
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil || f <= 0 {
		return fmt.Errorf("want a positive number of milliseconds, got %q", s)
	}
	*v = append(*v, f)
	return nil
}
