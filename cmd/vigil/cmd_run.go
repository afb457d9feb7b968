package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/telemetry"
)

func cmdRun() command {
	c := command{name: "run", summary: "consume session events into ClickHouse until SIGINT/SIGTERM", usage: `
Usage:
  vigil run --config FILE [--no-migrate] [--roles ingest,respond]

Migrates the ClickHouse schema (unless --no-migrate), joins the consumer
group and ingests until interrupted, then drains: every partition flushes
its buffered events and commits before vigil leaves the group. Admin
endpoints (/metrics, /healthz, /readyz, and /debug/pprof/ with admin.pprof)
are on admin.listen.

Roles: ingest consumes session events into ClickHouse, runs the detectors
and produces the policy's action intents to revoke.topic; respond consumes
those intents (consumer group revoke.group) and executes them at the
session API behind the guardrails (docs/revocation.md). Both run by
default; split them to scale or isolate the revoker.

Examples:
  vigil run --config /etc/vigil/vigil.yaml
  VIGIL_KAFKA_BROKERS=kafka:9092 VIGIL_CLICKHOUSE_ADDR=ch:9000 vigil run --no-migrate`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		noMigrate := fs.Bool("no-migrate", false, "do not apply migrations; fail if any are pending")
		roleList := fs.String("roles", "ingest,respond", "what this process runs: ingest (consume, store, detect, produce action intents), respond (execute action intents at the session API), or both")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		env.warnUnknownEnv()
		rs, err := parseRoles(*roleList)
		if err != nil {
			return err
		}
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		log := telemetry.NewLogger(env.stderr, cfg.Log.Level, cfg.Log.Format)
		if v, _ := env.getenv("GOGC"); v == "" {
			// Ingest allocates in proportion to its throughput and keeps
			// little: collecting half as often cuts vigil's CPU per event
			// by about an eighth for about 40% more peak memory
			// (docs/benchmarks.md). GOGC in the environment wins;
			// GOMEMLIMIT caps the heap either way.
			debug.SetGCPercent(200)
		}
		p, err := startPipeline(ctx, cfg, env, log, !*noMigrate, rs)
		if err != nil {
			if ctx.Err() != nil { // interrupted while waiting for ClickHouse
				log.Info("interrupted before start-up finished")
				return nil
			}
			return explainKafka(cfg.Kafka, err)
		}
		log.Info("vigil running", "topic", cfg.Kafka.Topic, "group", cfg.Kafka.Group, "database", cfg.ClickHouse.Database)
		<-ctx.Done()
		log.Info("shutting down: draining partitions", "timeout", cfg.Ingest.DrainTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Ingest.DrainTimeout+10*time.Second)
		defer cancel()
		if err := p.stop(sctx); err != nil {
			return err
		}
		if p.ingester != nil {
			log.Info("vigil stopped", "events", p.ingester.Stats().Events, "dead_letters", p.ingester.Stats().Invalid)
		} else {
			log.Info("vigil stopped")
		}
		return nil
	}
	return c
}

// explainKafka adds to err, when a broker closed the connection, what that
// most often means given kafka's security settings: kafka-go reports a
// refused SASL handshake or a TLS/plaintext mismatch only as an EOF.
func explainKafka(k config.Kafka, err error) error {
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		return err
	}
	switch {
	case k.SASL.Mechanism != "":
		return fmt.Errorf("%w\n(the broker closed the connection: with kafka.sasl.mechanism %s this usually means its listener does not offer SASL %s or refused the user %q; check the listener's security protocol, kafka.sasl and kafka.tls)",
			err, k.SASL.Mechanism, strings.ToUpper(k.SASL.Mechanism), k.SASL.Username)
	case k.TLS.Enabled:
		return fmt.Errorf("%w\n(the broker closed the connection: with kafka.tls.enabled this usually means the listener is plaintext, or wants SASL (kafka.sasl))", err)
	default:
		return fmt.Errorf("%w\n(the broker closed the connection: if its listener expects TLS or SASL, set kafka.tls or kafka.sasl)", err)
	}
}
