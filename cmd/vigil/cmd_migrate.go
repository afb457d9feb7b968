package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
)

func cmdMigrate() command {
	c := command{name: "migrate", summary: "create or upgrade the ClickHouse schema (idempotent)", usage: `
Usage:
  vigil migrate --config FILE [--cluster NAME] [--status | --print]

Applies every embedded migration not yet recorded in schema_migrations.
Safe to run again and from several processes at once. --status lists
pending migrations without applying them. --print writes the statements
a migration of an empty database runs, for review or to apply by hand,
and connects to nothing.

With --cluster NAME (or clickhouse.cluster) every statement runs ON
CLUSTER NAME, a cluster in the servers' remote_servers: each table is a
ReplicatedReplacingMergeTree named TABLE_local on every server, replicated
within its shard through ZooKeeper, and a Distributed table TABLE over
them, sharded by its sorting key, that vigil writes and reads. Every
server needs the {shard} and {replica} macros.

Examples:
  vigil migrate --config /etc/vigil/vigil.yaml
  vigil migrate --config /etc/vigil/vigil.yaml --cluster vigil
  vigil migrate --cluster vigil --print > vigil-cluster.sql
  VIGIL_CLICKHOUSE_ADDR=ch:9000 vigil migrate --status`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		status := fs.Bool("status", false, "list pending migrations only")
		cluster := fs.String("cluster", "", "migrate on this ClickHouse cluster (default clickhouse.cluster)")
		printDDL := fs.Bool("print", false, "print the statements instead of running them")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		if *cluster != "" {
			cfg.ClickHouse.Cluster = *cluster
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("--cluster: %w", err)
			}
		}
		if *printDDL {
			if *status {
				return errUsage("--print and --status do not go together")
			}
			stmts, err := chschema.DDL(cfg.ClickHouse.Database, cfg.ClickHouse.Cluster)
			if err != nil {
				return err
			}
			where := "one server"
			if cfg.ClickHouse.Cluster != "" {
				where = "cluster " + cfg.ClickHouse.Cluster
			}
			fmt.Fprintf(env.stdout, "-- vigil's ClickHouse schema for database %s on %s (vigil migrate --print).\n-- vigil migrate records the versions in schema_migrations afterwards.\n", cfg.ClickHouse.Database, where)
			for _, st := range stmts {
				fmt.Fprintf(env.stdout, "\n%s;\n", st)
			}
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		conn, err := openClickHouse(ctx, cfg.ClickHouse, env.getenv)
		if err != nil {
			return err
		}
		defer conn.Close()
		db := cfg.ClickHouse.Database
		if *status {
			pending, err := chschema.Pending(ctx, conn, db)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "database %s: %d pending migration(s) %v\n", db, len(pending), pending)
			return nil
		}
		res, err := chschema.MigrateCluster(ctx, conn, db, cfg.ClickHouse.Cluster)
		if err != nil {
			return err
		}
		on := ""
		if cfg.ClickHouse.Cluster != "" {
			on = " on cluster " + cfg.ClickHouse.Cluster
		}
		fmt.Fprintf(env.stdout, "database %s%s: applied %v, schema version %d\n", db, on, res.Applied, res.Current)
		return nil
	}
	return c
}
