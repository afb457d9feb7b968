package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/localkafka"
	"github.com/vigilhq/vigil/internal/telemetry"
	"github.com/vigilhq/vigil/sim"
)

func cmdDemo() command {
	c := command{name: "demo", summary: "run the whole pipeline locally: in-process Kafka, a local ClickHouse, simulated traffic", usage: `
Usage:
  vigil demo [--duration 20s] [--rate 20000] [--clickhouse ADDR]

Starts an in-process Kafka (kfake, on a loopback TCP port), a private
clickhouse-server in a temporary directory (or uses --clickhouse), a
simulated session service producing events with invalid messages mixed in,
and vigil's ingest pipeline with its admin endpoints; prints live progress,
then a summary read back from ClickHouse that checks nothing was lost.

Examples:
  vigil demo
  vigil demo --duration 1m --rate 50000
  vigil demo --clickhouse 127.0.0.1:9000 --keep
  vigil demo --hold     # keep it running afterwards to query ClickHouse and read the DLQ with kcat`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		duration := fs.Duration("duration", 20*time.Second, "how long to produce traffic")
		rate := fs.Int("rate", 20000, "events per second to produce")
		chAddr := fs.String("clickhouse", "", "use this ClickHouse (host:port, native protocol) instead of starting one")
		partitions := fs.Int("partitions", 4, "partitions of the session-events topic")
		seed := fs.Uint64("seed", 1, "simulator seed")
		keep := fs.Bool("keep", false, "keep the ClickHouse data directory (and database) afterwards")
		admin := fs.String("admin", "127.0.0.1:9464", "admin listen address (/metrics, /readyz); falls back to a free port if busy")
		hold := fs.Bool("hold", false, "after the summary, keep everything running (Ctrl-C to stop) to explore with clickhouse-client, kcat and /metrics")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		if *rate < 1 || *partitions < 1 {
			return errUsage("--rate and --partitions must be positive")
		}
		return runDemo(ctx, env, demoOptions{duration: *duration, rate: *rate, chAddr: *chAddr, partitions: *partitions, seed: *seed, keep: *keep, admin: *admin, hold: *hold})
	}
	return c
}

type demoOptions struct {
	duration   time.Duration
	rate       int
	chAddr     string
	partitions int
	seed       uint64
	keep       bool
	admin      string
	hold       bool
}

func runDemo(ctx context.Context, env *cmdEnv, o demoOptions) error {
	out := env.stdout
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	// Sinks before sources: ClickHouse, then Kafka, then the pipeline, then traffic.
	addr := o.chAddr
	if addr == "" {
		dir := ""
		if o.keep {
			dir = ".vigil-demo/clickhouse"
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		srv, err := chserver.Start(ctx, chserver.Options{Dir: dir})
		if err != nil {
			if errors.Is(err, chserver.ErrNotInstalled) {
				return fmt.Errorf("%w; or run `make demo`, which installs it, or pass --clickhouse host:port", err)
			}
			return err
		}
		defer srv.Close()
		addr = srv.Addr()
		say("clickhouse   started %s (data in %s)", addr, srv.Dir())
	}
	const topic, dlq = "session-events", "vigil.dlq"
	cluster, err := localkafka.Start(map[string]int{topic: o.partitions, dlq: 1})
	if err != nil {
		return fmt.Errorf("start in-process kafka: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	say("kafka        in-process kfake at %s, topics %s (%d partitions) and %s", strings.Join(brokers, ","), topic, o.partitions, dlq)

	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.ClickHouse.Addr = []string{addr}
	cfg.ClickHouse.Database = "vigil_demo"
	cfg.Admin.Listen = o.admin
	if l, err := net.Listen("tcp", o.admin); err != nil {
		cfg.Admin.Listen = "127.0.0.1:0"
	} else {
		l.Close()
	}
	cfg.Ingest.FlushInterval = 500 * time.Millisecond
	cfg.Ingest.LagInterval = time.Second
	if err := cfg.Validate(); err != nil {
		return err
	}
	var logBuf syncBuffer
	log := telemetry.NewLogger(&logBuf, "warn", "text")
	p, err := startPipeline(ctx, &cfg, env, log, true)
	if err != nil {
		return err
	}
	defer p.stop(context.Background())
	if err := p.conn.Exec(ctx, "TRUNCATE TABLE IF EXISTS vigil_demo.events"); err != nil {
		return err
	}
	_ = p.conn.Exec(ctx, "TRUNCATE TABLE IF EXISTS vigil_demo.dead_letters")
	_ = p.conn.Exec(ctx, "TRUNCATE TABLE IF EXISTS vigil_demo.event_subjects")
	say("vigil        ingesting into database vigil_demo; metrics at http://%s/metrics, readiness at /readyz", p.admin.Addr())
	say("simulator    %d events/s for %s, 1 in 200 messages invalid (every rejection reason in turn)", o.rate, o.duration)
	say("")

	// Traffic.
	var produced, producedValid atomic.Int64
	prodCtx, stopProd := context.WithTimeout(ctx, o.duration)
	defer stopProd()
	prodDone := make(chan error, 1)
	go func() { prodDone <- produce(prodCtx, brokers, topic, o, &produced, &producedValid) }()

	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastEvents int64
	progress := func() {
		st := p.ingester.Stats()
		lagCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lags, _ := p.ingester.Lag(lagCtx)
		cancel()
		var lag int64
		for _, l := range lags {
			lag += l.Messages
		}
		ready := "ready"
		if err := p.admin.Ready(); err != nil {
			ready = "NOT READY"
		}
		say("%6.1fs  produced %8d   stored %8d events (%6d/s)   dead-lettered %5d   lag %6d   %s",
			time.Since(start).Seconds(), produced.Load(), st.Events, st.Events-lastEvents, st.Invalid, lag, ready)
		lastEvents = st.Events
	}
	producing := true
	var prodErr error
	deadline := time.Time{}
	for {
		select {
		case <-ctx.Done():
			say("interrupted; draining")
			return p.stop(context.Background())
		case prodErr = <-prodDone:
			producing = false
			deadline = time.Now().Add(60 * time.Second)
			if prodErr != nil && !errors.Is(prodErr, context.DeadlineExceeded) {
				return fmt.Errorf("simulator: %w", prodErr)
			}
			say("simulator    done: %d messages; waiting for vigil to catch up", produced.Load())
			continue
		case <-tick.C:
		}
		progress()
		if !producing {
			st := p.ingester.Stats()
			if st.Events+st.Invalid >= produced.Load() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("vigil did not catch up within 60s; logs:\n%s", logBuf.String())
			}
		}
	}
	if err := demoSummary(ctx, env, p, producedValid.Load(), produced.Load()-producedValid.Load(), time.Since(start)); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	say("\nexplore:")
	say("  clickhouse-client --port %s -d vigil_demo -q 'SELECT type, count() FROM events FINAL GROUP BY type'", port)
	say("  kcat -b %s -t %s -C -e -f '%%h\\n%%s\\n\\n' | head", brokers[0], dlq)
	say("  curl -s http://%s/metrics | grep ^vigil_ingest", p.admin.Addr())
	if !o.hold {
		say("  (these work while the demo runs: use --hold to keep it running after the summary)")
		return nil
	}
	say("holding; Ctrl-C to stop")
	<-ctx.Done()
	return p.stop(context.Background())
}

func produce(ctx context.Context, brokers []string, topic string, o demoOptions, produced, valid *atomic.Int64) error {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 2000, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	s := sim.NewStream(sim.StreamConfig{Seed: o.seed, Users: 20000, Start: time.Now().UTC().Add(-o.duration), Step: time.Second / time.Duration(o.rate), InvalidEvery: 200})
	const chunk = 500
	interval := time.Duration(float64(time.Second) * chunk / float64(o.rate))
	next := time.Now()
	msgs := make([]kafka.Message, chunk)
	for ctx.Err() == nil {
		nValid := 0
		for i := range msgs {
			m := s.Next()
			msgs[i] = kafka.Message{Key: m.Key, Value: m.Value}
			if m.Valid {
				nValid++
			}
		}
		if err := w.WriteMessages(context.WithoutCancel(ctx), msgs...); err != nil {
			return err
		}
		produced.Add(chunk)
		valid.Add(int64(nValid))
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
	return ctx.Err()
}

func demoSummary(ctx context.Context, env *cmdEnv, p *pipeline, wantValid, wantInvalid int64, took time.Duration) error {
	out := env.stdout
	var events, dead uint64
	if err := p.conn.QueryRow(ctx, "SELECT count() FROM vigil_demo.events FINAL").Scan(&events); err != nil {
		return err
	}
	if err := p.conn.QueryRow(ctx, "SELECT count() FROM vigil_demo.dead_letters FINAL").Scan(&dead); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsummary (read back from ClickHouse, after dedup)\n")
	fmt.Fprintf(out, "  events        %d stored, %d valid produced\n", events, wantValid)
	fmt.Fprintf(out, "  dead letters  %d stored, %d invalid produced\n", dead, wantInvalid)
	table := func(title, q string) error {
		rows, err := p.conn.Query(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		fmt.Fprintf(out, "  %s\n", title)
		for rows.Next() {
			var k string
			var n uint64
			if err := rows.Scan(&k, &n); err != nil {
				return err
			}
			fmt.Fprintf(out, "    %-22s %d\n", k, n)
		}
		return rows.Err()
	}
	if err := table("events by type", "SELECT toString(type), count() FROM vigil_demo.events FINAL GROUP BY type ORDER BY type"); err != nil {
		return err
	}
	if err := table("dead letters by reason", "SELECT reason, count() FROM vigil_demo.dead_letters FINAL GROUP BY reason ORDER BY reason"); err != nil {
		return err
	}
	fmt.Fprintf(out, "  throughput    %.0f events/s over %s\n", float64(events+dead)/took.Seconds(), took.Round(100*time.Millisecond))
	if int64(events) != wantValid || int64(dead) != wantInvalid {
		return fmt.Errorf("demo: stored %d events and %d dead letters, want %d and %d", events, dead, wantValid, wantInvalid)
	}
	fmt.Fprintf(out, "  ok: every message is in ClickHouse exactly once\n")
	return nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers
// (loggers, child process output).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p under the lock.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
