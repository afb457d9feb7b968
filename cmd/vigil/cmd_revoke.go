package main

import (
	"context"
	"fmt"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/revoke"
)

func cmdRevoke() command {
	c := command{name: "revoke", summary: "the revoker's state: what it did in the last hour, whether the blast-radius cap halted it; resume after a halt", usage: `
Usage:
  vigil revoke status [--since 1h] [--config FILE]
  vigil revoke resume --reason TEXT [--config FILE]

status reads the actions table: the actions that ended in the last --since
by status and guardrail, and whether revocation is halted (the
blast-radius cap tripped less than revoke.halt_for ago and nobody resumed).

resume records that an operator looked and revocation may go on: every
running revoker ends its halt within seconds, and the cap counts afresh
from now (the cool-down still remembers earlier revocations). The reason
and your user name are kept in the row. Raise revoke.max_actions instead
if the volume was legitimate.

Examples:
  vigil revoke status --config /etc/vigil/vigil.yaml
  vigil revoke resume --reason "INC-1234: replay storm from the mobile app bug; rule fixed" --config vigil.yaml`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		if len(args) == 0 || (args[0] != "status" && args[0] != "resume") {
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
				newFlags(&c, env).Usage()
				return nil
			}
			return errUsage("usage: vigil revoke status|resume [flags]")
		}
		sub := args[0]
		fs := newFlags(&c, env)
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		since := fs.Duration("since", time.Hour, "status: how far back to count actions")
		reason := fs.String("reason", "", "resume: why revocation may go on (kept in the actions table)")
		if done, err := parseFlags(fs, args[1:]); done {
			return err
		}
		if sub == "resume" && strings.TrimSpace(*reason) == "" {
			return errUsage("vigil revoke resume: --reason is required: say why revocation may go on")
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		conn, err := openClickHouse(ctx, cfg.ClickHouse, env.getenv)
		if err != nil {
			return err
		}
		defer conn.Close()
		store := revoke.NewClickHouseStore(conn, cfg.ClickHouse.Database)
		now := time.Now()
		h, err := store.Halt(ctx, cfg.Revoke, now)
		if err != nil {
			return err
		}
		if sub == "resume" {
			if h.Until.IsZero() {
				fmt.Fprintln(env.stdout, "revocation is not halted; recording the resume anyway (the cap counts afresh from now)")
			}
			by := "unknown"
			if u, err := user.Current(); err == nil {
				by = u.Username
			}
			if err := store.RecordResume(ctx, *reason, by, now); err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "resumed at %s by %s; running revokers pick it up within %s\n", now.UTC().Format(time.RFC3339), by, 2*time.Second)
			return nil
		}
		switch {
		case !h.Until.IsZero():
			fmt.Fprintf(env.stdout, "HALTED since %s (tripped by action %s) until %s: run vigil revoke resume --reason … once a human has looked\n",
				h.TrippedAt.UTC().Format(time.RFC3339), h.TripID, h.Until.UTC().Format(time.RFC3339))
		case !h.TrippedAt.IsZero():
			fmt.Fprintf(env.stdout, "acting (the cap tripped at %s; resumed at %s or halt_for passed)\n", h.TrippedAt.UTC().Format(time.RFC3339), h.ResumedAt.UTC().Format(time.RFC3339))
		default:
			fmt.Fprintln(env.stdout, "acting (the blast-radius cap has not tripped within revoke.halt_for)")
		}
		rows, err := conn.Query(ctx, "SELECT toString(status), guardrail, uniqExact(action_id) FROM "+cfg.ClickHouse.Database+
			".actions WHERE time >= ? AND status IN ('succeeded', 'failed', 'dry_run', 'suppressed') GROUP BY status, guardrail ORDER BY status, guardrail", now.Add(-*since))
		if err != nil {
			return err
		}
		defer rows.Close()
		tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "\nactions ended in the last %s\nSTATUS\tGUARDRAIL\tACTIONS\n", *since)
		for rows.Next() {
			var status, guard string
			var n uint64
			if err := rows.Scan(&status, &guard, &n); err != nil {
				return err
			}
			if guard == "" {
				guard = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\n", status, guard, n)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tw.Flush()
	}
	return c
}
