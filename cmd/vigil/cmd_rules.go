package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/slo"
)

// rulesFile and pipelineRulesFile are the names of the generated rule files in --out.
const (
	rulesFile         = "slos.yaml"
	pipelineRulesFile = "pipeline.yaml"
)

func cmdRules() command {
	c := command{name: "rules", summary: "generate Prometheus rules: SLO recordings and burn-rate alerts, and the pipeline's own alerts", usage: `
Usage:
  vigil rules generate [--out DIR] [--config FILE] [--min-events 100] [--runbook-url URL]
                       [--job vigil] [--runbook-base URL]

Writes DIR/` + rulesFile + `: for each SLO (the seed SLOs, or the config's
slo.spec_file) the error ratio over 5m, 30m, 1h, 2h, 6h, 1d, 3d and the SLO
window, the objective, the error budget and its remaining share (Sloth's
slo:* names), and multiwindow multi-burn-rate alerts (page at 14.4× over
1h and 5m or 6× over 6h and 30m, ticket at 3× over 1d and 2h or 1× over 3d
and 6h, for a 30-day window; scaled for others) that fire only with at
least --min-events events in the long window.

Also writes DIR/` + pipelineRulesFile + `: alerts on vigil itself (down or unscraped
as Prometheus job --job, consumer lag, dead letters, failing ClickHouse
inserts, failed revocations, an open session-API circuit breaker, the
revoker halted, stalled window detectors, undelivered alerts), each with a
runbook_url of --runbook-base/ALERTNAME.md (alerts/runbooks/). Both files
are checked with Prometheus' own rule loader and PromQL parser before they
are written.

Examples:
  vigil rules generate --out /etc/prometheus/rules
  vigil rules generate --config vigil.yaml --out alerts/rules && promtool check rules alerts/rules/` + rulesFile + ` alerts/rules/` + pipelineRulesFile}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		if len(args) == 0 || args[0] != "generate" {
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
				newFlags(&c, env).Usage()
				return nil
			}
			return errUsage("usage: vigil rules generate [--out DIR]")
		}
		fs := newFlags(&c, env)
		out := fs.String("out", ".", "directory to write "+rulesFile+" and "+pipelineRulesFile+" to")
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		minEvents := fs.Float64("min-events", 100, "fewest events in an alert's long window for it to fire")
		runbook := fs.String("runbook-url", "", "runbook_url annotation of the SLO alerts")
		pipeline := alerts.DefaultPipelineOptions()
		fs.StringVar(&pipeline.Job, "job", pipeline.Job, "Prometheus job label of vigil's scrape targets (pipeline alerts)")
		fs.StringVar(&pipeline.RunbookBaseURL, "runbook-base", pipeline.RunbookBaseURL, "where alerts/runbooks is published: the pipeline alerts' runbook_url is this/ALERTNAME.md")
		if done, err := parseFlags(fs, args[1:]); done {
			return err
		}
		if *minEvents < 0 {
			return errUsage("--min-events must not be negative, got %g", *minEvents)
		}
		if strings.TrimSpace(pipeline.Job) == "" || pipeline.RunbookBaseURL == "" {
			return errUsage("--job and --runbook-base must not be empty")
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		specs, err := slo.Configured(cfg.SLO.SpecFile)
		if err != nil {
			return err
		}
		groups, err := slo.Rules(specs, slo.RuleOptions{MinEvents: *minEvents, RunbookURL: *runbook})
		if err != nil {
			return err
		}
		b, err := slo.Marshal(groups)
		if err != nil {
			return err
		}
		pipelineGroups, err := alerts.PipelineRules(pipeline)
		if err != nil {
			return err
		}
		pb, err := alerts.MarshalRules(pipelineGroups)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		dst := filepath.Join(*out, rulesFile)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		pipelineDst := filepath.Join(*out, pipelineRulesFile)
		if err := os.WriteFile(pipelineDst, pb, 0o644); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		covered := 0
		for _, s := range specs {
			if slo.Covered(s) {
				covered++
			}
		}
		fmt.Fprintf(env.stdout, "wrote %s: %d rule groups for %d of %d SLOs (enforcement SLIs have no live counter yet; vigil slo report computes them)\n",
			dst, len(groups.Groups), covered, len(specs))
		fmt.Fprintf(env.stdout, "wrote %s: %d alerts on the pipeline itself (job %q; runbooks %s)\n",
			pipelineDst, len(alerts.AlertNames(pipelineGroups)), pipeline.Job, pipeline.RunbookBaseURL)
		return nil
	}
	return c
}
