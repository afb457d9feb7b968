package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/localkafka"
	"github.com/vigilhq/vigil/internal/telemetry"
	"github.com/vigilhq/vigil/postmortem"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/sim"
	"github.com/vigilhq/vigil/sim/score"
	"github.com/vigilhq/vigil/sim/sessionapi"
	"github.com/vigilhq/vigil/sim/truth"
	"github.com/vigilhq/vigil/slo"
)

func cmdDemo() command {
	c := command{name: "demo", summary: "run the whole pipeline locally on simulated traffic with attacks, then score it", usage: `
Usage:
  vigil demo [--duration 45s] [--rate 20000] [--users 20000] [--scenario a,b,…|all]
             [--seed 1] [--linger 5s] [--clickhouse ADDR] [--partitions 4]
             [--admin ADDR] [--keep] [--hold] [--report DIR]

One command, no setup: starts an in-process Kafka (kfake, on a loopback
TCP port), a private clickhouse-server in a temporary directory (or uses
--clickhouse), vigil's pipeline with its admin endpoints, and the
simulated session service with its revocation API, playing a default
story: normal traffic, then token thefts, hijacked sessions, revocations
the service fails to enforce, a credential-stuffing wave and a reconnect
storm (1 in 200 messages is invalid, to show the dead-letter path). It
prints live progress, then a summary read back from ClickHouse that checks
nothing was lost, the scorecard (` + "`vigil score`" + `), the exact SLO report
over the run (` + "`vigil slo report`" + `), the incident report over the run
(` + "`vigil incident`" + `: its timeline printed, the whole report written to
--report DIR as incident.md and incident.html), and the commands to query
what it stored.

Examples:
  vigil demo
  vigil demo --duration 2m --rate 50000
  vigil demo --scenario all --duration 3m
  vigil demo --clickhouse 127.0.0.1:9000 --keep
  vigil demo --hold     # keep it running afterwards to query ClickHouse and read the DLQ with kcat`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		duration := fs.Duration("duration", 45*time.Second, "how long to produce traffic (event time = wall time)")
		rate := fs.Int("rate", 20000, "events per second to produce")
		users := fs.Int("users", 20000, "simulated users")
		scenarios := fs.String("scenario", "token_theft_replay,concurrent_hijack,revocation_not_enforced,credential_stuffing,reconnect_storm", "scenarios to play, comma-separated, or all")
		chAddr := fs.String("clickhouse", "", "use this ClickHouse (host:port, native protocol) instead of starting one")
		partitions := fs.Int("partitions", 4, "partitions of the session-events topic")
		seed := fs.Uint64("seed", 1, "simulator seed")
		keep := fs.Bool("keep", false, "keep the ClickHouse data and the truth file in .vigil-demo/ afterwards")
		admin := fs.String("admin", "127.0.0.1:9464", "admin listen address (/metrics, /readyz); falls back to a free port if busy")
		linger := fs.Duration("linger", 5*time.Second, "after everything is stored, wait this long for late detections and revocations before scoring")
		report := fs.String("report", ".vigil-demo", "directory to write the incident report over the run to (incident.md, incident.html)")
		hold := fs.Bool("hold", false, "after the summary, keep everything running (Ctrl-C to stop) to explore with clickhouse-client, kcat and /metrics")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		if *rate < 1 || *partitions < 1 || *users < 1 || *duration <= 0 {
			return errUsage("--rate, --users, --partitions and --duration must be positive")
		}
		return runDemo(ctx, env, demoOptions{duration: *duration, rate: *rate, users: *users, scenarios: *scenarios, chAddr: *chAddr,
			partitions: *partitions, seed: *seed, keep: *keep, admin: *admin, hold: *hold, linger: *linger, report: *report})
	}
	return c
}

type demoOptions struct {
	duration   time.Duration
	rate       int
	users      int
	scenarios  string
	chAddr     string
	partitions int
	seed       uint64
	keep       bool
	admin      string
	hold       bool
	linger     time.Duration
	report     string
}

func runDemo(ctx context.Context, env *cmdEnv, o demoOptions) error {
	out := env.stdout
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	// Sinks before sources: ClickHouse, then Kafka, then the pipeline, then traffic.
	workDir, err := filepath.Abs(".vigil-demo") // clickhouse-server resolves paths from its own directory
	if err != nil {
		return err
	}
	if !o.keep {
		d, err := os.MkdirTemp("", "vigil-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		workDir = d
	}
	addr := o.chAddr
	if addr == "" {
		dir := ""
		if o.keep {
			dir = filepath.Join(workDir, "clickhouse")
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
	const topic, dlq, actions = "session-events", "vigil.dlq", "vigil.actions"
	cluster, err := localkafka.Start(map[string]int{topic: o.partitions, dlq: 1, actions: 1})
	if err != nil {
		return fmt.Errorf("start in-process kafka: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	say("kafka        in-process kfake at %s, topics %s (%d partitions), %s and %s", strings.Join(brokers, ","), topic, o.partitions, dlq, actions)

	// The simulated session service (traffic, scenarios, revocation API)
	// starts before vigil, so vigil's revoker can be pointed at it; its
	// events flow only once the producer runs.
	so := &simOptions{users: o.users, tenants: 1, sampleRate: 1, rate: float64(o.rate), speedup: 1, duration: o.duration,
		scenarios: o.scenarios, seed: o.seed, truthPath: filepath.Join(workDir, "truth.jsonl"), api: sessionapi.DefaultConfig(), flat: true}
	simCfg, err := so.config(time.Now())
	if err != nil {
		return err
	}
	tr := &kafka.Transport{ClientID: "vigil-demo-simulator"}
	defer tr.CloseIdleConnections()
	w := simWriter(brokers, topic, tr)
	defer w.Close()
	dw := &dlqMixer{w: w, every: 200, bad: sim.NewStream(sim.StreamConfig{Seed: o.seed, InvalidEvery: 1, Start: time.Now().UTC()})}
	run, err := startSimulation(ctx, simCfg, so, dw)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = run.close(context.Background())
		}
	}()
	say("simulator    %d users, %d events/s for %s; revocation API at http://%s%s", o.users, o.rate, o.duration, run.api.Addr(), sessionapi.Path)
	for _, sp := range simCfg.Scenarios {
		say("             %-24s at +%s", sp.Name, sp.At)
	}

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
	// The revoker acts on the simulated session service's API (plain HTTP on loopback).
	cfg.Revoke.Adapter.Kind = revoke.AdapterHTTP
	cfg.Revoke.Adapter.URL = "http://" + run.api.Addr()
	cfg.Revoke.Adapter.AllowHTTP = true
	cfg.Ingest.FlushInterval = 500 * time.Millisecond
	cfg.Ingest.LagInterval = time.Second
	if err := cfg.Validate(); err != nil {
		return err
	}
	var logBuf syncBuffer
	log := telemetry.NewLogger(&logBuf, "warn", "text")
	p, err := startPipeline(ctx, &cfg, env, log, true, allRoles)
	if err != nil {
		return err
	}
	defer p.stop(context.Background())
	for _, t := range []string{"events", "dead_letters", "event_subjects", "anomalies", "actions"} {
		if err := p.conn.Exec(ctx, "TRUNCATE TABLE IF EXISTS vigil_demo."+t); err != nil {
			return err
		}
	}
	say("vigil        ingesting into database vigil_demo; metrics at http://%s/metrics, readiness at /readyz", p.admin.Addr())

	say("")

	prodCtx, stopProd := context.WithCancel(ctx)
	defer stopProd()
	prodDone := make(chan error, 1)
	go func() { prodDone <- run.prod.Run(prodCtx) }()

	tty := isTerminal(out)
	endLine := func() {
		if tty {
			fmt.Fprintln(out)
		}
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastEvents int64
	progress := func() {
		st := p.ingester.Stats()
		lagCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lags, _ := p.ingester.Lag(lagCtx)
		var anomalies uint64
		_ = p.conn.QueryRow(lagCtx, "SELECT count() FROM vigil_demo.anomalies").Scan(&anomalies)
		cancel()
		var lag int64
		for _, l := range lags {
			lag += l.Messages
		}
		ready := "ready"
		if err := p.admin.Ready(); err != nil {
			ready = "NOT READY"
		}
		line := fmt.Sprintf("%5.0fs  %7d ev/s  stored %8d  lag %6d  anomalies %3d  revocations %3d  DLQ %5d  %s",
			time.Since(start).Seconds(), st.Events-lastEvents, st.Events, lag, anomalies, run.api.Stats().Revoked, st.Invalid, ready)
		if tty {
			fmt.Fprint(out, "\r\033[K"+line) // one line, rewritten in place
		} else {
			say("%s", line)
		}
		lastEvents = st.Events
	}
	producing := true
	deadline := time.Time{}
	for {
		select {
		case <-ctx.Done():
			endLine()
			say("interrupted; draining")
			stopProd()
			if producing {
				<-prodDone
			}
			return nil // the deferred stops drain the pipeline
		case prodErr := <-prodDone:
			producing = false
			deadline = time.Now().Add(60 * time.Second)
			if prodErr != nil {
				endLine()
				return fmt.Errorf("simulator: %w", prodErr)
			}
			endLine()
			say("simulator    done: %d messages; waiting for vigil to catch up", dw.total.Load())
			continue
		case <-tick.C:
		}
		progress()
		if !producing {
			st := p.ingester.Stats()
			if st.Events+st.Invalid >= dw.total.Load() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("vigil did not catch up within 60s; logs:\n%s", logBuf.String())
			}
		}
	}
	endLine()
	if o.linger > 0 {
		// Window detectors run on an interval and revocations are retried:
		// give them a moment before scoring.
		say("all stored; waiting %s for late detections and revocations", o.linger)
		for until := time.Now().Add(o.linger); time.Now().Before(until); {
			select {
			case <-ctx.Done():
				endLine()
				say("interrupted")
				return nil
			case <-tick.C:
				progress()
			}
		}
		endLine()
	}
	closed = true
	if err := run.close(context.Background()); err != nil {
		return err
	}
	if err := demoSummary(ctx, env, p, dw.total.Load()-dw.invalid.Load(), dw.invalid.Load(), time.Since(start)); err != nil {
		return err
	}
	if err := demoScore(ctx, env, p, so.truthPath); err != nil {
		return err
	}
	if err := demoSLOs(ctx, env, p, simCfg.Start, simCfg.Start.Add(simCfg.Duration)); err != nil {
		return err
	}
	if err := demoIncident(ctx, env, &cfg, o.report, simCfg.Start.Add(-time.Second), time.Now().Add(time.Second)); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	say("\nexplore:")
	say("  clickhouse-client --port %s -d vigil_demo -q 'SELECT type, count() FROM events FINAL GROUP BY type'", port)
	say("  clickhouse-client --port %s -d vigil_demo -q 'SELECT * FROM anomalies FINAL ORDER BY detected_at FORMAT Vertical'", port)
	say("  clickhouse-client --port %s -d vigil_demo -q 'SELECT time, action_id, status, guardrail, action, http_status, time_to_revoke_ms FROM actions FINAL ORDER BY time_ns'", port)
	say("  kcat -b %s -t %s -C -e -f '%%h\\n%%s\\n\\n' | head", brokers[0], dlq)
	say("  curl -s http://%s/metrics | grep -E '^vigil_(ingest|anomalies|detect)'", p.admin.Addr())
	if o.keep {
		say("  VIGIL_CLICKHOUSE_ADDR=%s VIGIL_CLICKHOUSE_DATABASE=vigil_demo vigil score --truth %s", addr, so.truthPath)
	}
	if !o.hold {
		say("  (these work while the demo runs: use --hold to keep it running after the summary)")
		return nil
	}
	say("holding; Ctrl-C to stop")
	<-ctx.Done()
	return nil // the deferred stops drain and close everything
}

// demoScore prints the scorecard of the run.
func demoScore(ctx context.Context, env *cmdEnv, p *pipeline, truthPath string) error {
	f, err := os.Open(truthPath)
	if err != nil {
		return err
	}
	tf, err := truth.Read(f)
	f.Close()
	if err != nil {
		return err
	}
	rep, err := score.Compute(ctx, p.conn, tf, score.Options{Database: "vigil_demo"})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "\nscorecard (vigil score: what vigil caught, how fast, what it got wrong)\n")
	return rep.WriteTable(env.stdout)
}

// demoSLOs prints the exact SLO report over the simulated interval: the
// reconnect storm's store outage shows in validation, refresh and login
// availability.
func demoSLOs(ctx context.Context, env *cmdEnv, p *pipeline, from, to time.Time) error {
	rep, err := slo.BuildReport(ctx, p.conn, slo.Defaults(), slo.ReportOptions{Database: "vigil_demo", From: from, To: to.Add(time.Second)})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "\nSLOs over the run (vigil slo report: exact, from ClickHouse)\n")
	return rep.WriteTable(env.stdout, false)
}

// demoIncident writes the incident report over the run (vigil incident)
// to dir as incident.md and incident.html and prints its timeline.
func demoIncident(ctx context.Context, env *cmdEnv, cfg *config.Config, dir string, from, to time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conn, err := openClickHouseIn(ctx, cfg.ClickHouse, env.getenv, cfg.ClickHouse.Database)
	if err != nil {
		return err
	}
	defer conn.Close()
	from, to = from.UTC().Truncate(time.Second), to.UTC().Truncate(time.Second)
	inc, err := postmortem.BuildIncident(ctx, conn, postmortem.IncidentOptions{From: from, To: to, Database: cfg.ClickHouse.Database, SLOs: slo.Defaults(),
		Grace: cfg.Detect.UseAfterRevocation.Grace})
	if err != nil {
		return err
	}
	md, html := filepath.Join(dir, "incident.md"), filepath.Join(dir, "incident.html")
	quiet := &cmdEnv{stdout: io.Discard, stderr: env.stderr, getenv: env.getenv}
	for _, path := range []string{md, html} {
		if err := writeReport(inc, path, 10, quiet); err != nil {
			return err
		}
	}
	out := env.stdout
	fmt.Fprintf(out, "\nincident report (vigil incident --from %s --to %s): %s, %s\n  %s\n",
		from.Format(time.RFC3339), to.Format(time.RFC3339), md, html, inc.Headline())
	for i, m := range inc.Moments {
		if i == 20 {
			fmt.Fprintf(out, "  … %d more in the report\n", len(inc.Moments)-i)
			break
		}
		fmt.Fprintf(out, "  %s  %s\n", m.Time.Format("15:04:05.000"), m.What)
	}
	return nil
}

// dlqMixer passes the simulator's messages on and mixes in one invalid
// message (each rejection reason in turn) every `every` messages, so the
// demo shows the dead-letter path. Only the producer goroutine writes.
type dlqMixer struct {
	w              sim.MessageWriter
	every          int
	bad            *sim.Stream
	n              int
	total, invalid atomic.Int64
	buf            []kafka.Message
}

// WriteMessages writes msgs with the invalid ones mixed in.
func (d *dlqMixer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	d.buf = d.buf[:0]
	bad := 0
	for _, m := range msgs {
		d.buf = append(d.buf, m)
		if d.n++; d.n%d.every == 0 {
			b := d.bad.Next()
			d.buf = append(d.buf, kafka.Message{Key: b.Key, Value: b.Value})
			bad++
		}
	}
	if err := d.w.WriteMessages(ctx, d.buf...); err != nil {
		return err
	}
	d.invalid.Add(int64(bad))
	d.total.Add(int64(len(d.buf)))
	return nil
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

// isTerminal reports whether w is a character device (an interactive
// terminal), where progress is rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
