package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/sim/score"
	"github.com/vigilhq/vigil/sim/truth"
)

func cmdScore() command {
	c := command{name: "score", summary: "score vigil's detections and revocations against a simulation's ground truth", usage: `
Usage:
  vigil score --truth FILE [--config FILE] [--json] [--slack 1m]

Reads the ground truth ` + "`vigil simulate`" + ` wrote (scenarios and the
revocations its API received) and the anomalies vigil stored in ClickHouse
(the config's clickhouse section), and prints per scenario and detector:
detected or not, time to detect (first offending event → anomaly), time to
revoke (first offending event → revocation received), and false positives
(anomalies and revocations about benign look-alikes or normal traffic).
Without an anomalies table it scores what it can (revocations) and says so.

Examples:
  vigil score --truth truth.jsonl --config /etc/vigil/vigil.yaml
  vigil score --truth truth.jsonl --json | jq '.totals'`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		truthPath := fs.String("truth", "", "ground-truth file written by vigil simulate (required)")
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		slack := fs.Duration("slack", score.DefaultSlack, "how far outside a scenario's time window an anomaly may start and still match it")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		if *truthPath == "" {
			return errUsage("--truth is required")
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		f, err := os.Open(*truthPath)
		if err != nil {
			return fmt.Errorf("--truth: %w", err)
		}
		tf, err := truth.Read(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--truth %s: %w", *truthPath, err)
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		conn, err := openClickHouse(ctx, cfg.ClickHouse, env.getenv)
		if err != nil {
			return err
		}
		defer conn.Close()
		rep, err := score.Compute(ctx, conn, tf, score.Options{Database: cfg.ClickHouse.Database, Slack: *slack})
		if err != nil {
			return err
		}
		if *asJSON {
			return rep.WriteJSON(env.stdout)
		}
		return rep.WriteTable(env.stdout)
	}
	return c
}
