package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/telemetry"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/revoke/auth0"
	"github.com/vigilhq/vigil/revoke/httpapi"
	"github.com/vigilhq/vigil/revoke/keycloak"
	"github.com/vigilhq/vigil/revoke/kratos"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
	"github.com/vigilhq/vigil/slo"
)

func lookupEnv(k string) (string, bool) { return os.LookupEnv(k) }

// tlsConfig builds a *tls.Config from a TLS section, or nil when disabled.
func tlsConfig(key string, t config.TLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: no PEM certificates in %s", key, t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file/key_file: %w", key, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// kafkaClients builds the dialer (consumer group, readers) and transport
// (writers, admin requests) from the kafka section.
func kafkaClients(k config.Kafka) (*kafka.Dialer, *kafka.Transport, error) {
	tc, err := tlsConfig("kafka.tls", k.TLS)
	if err != nil {
		return nil, nil, err
	}
	var mech sasl.Mechanism
	if k.SASL.Mechanism != "" {
		pw, err := k.SASL.Password()
		if err != nil {
			return nil, nil, err
		}
		switch k.SASL.Mechanism {
		case "plain":
			mech = plain.Mechanism{Username: k.SASL.Username, Password: pw}
		case "scram-sha-256":
			mech, err = scram.Mechanism(scram.SHA256, k.SASL.Username, pw)
		case "scram-sha-512":
			mech, err = scram.Mechanism(scram.SHA512, k.SASL.Username, pw)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("kafka.sasl: %w", err)
		}
	}
	d := &kafka.Dialer{ClientID: k.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: tc, SASLMechanism: mech}
	t := &kafka.Transport{ClientID: k.ClientID, TLS: tc, SASL: mech, DialTimeout: 10 * time.Second}
	return d, t, nil
}

// openClickHouse connects with the clickhouse section.
func openClickHouse(ctx context.Context, c config.ClickHouse, getenv func(string) (string, bool)) (driver.Conn, error) {
	return openClickHouseIn(ctx, c, getenv, "")
}

// openClickHouseIn connects with the clickhouse section and db as the
// default database (for the named queries' unqualified tables).
func openClickHouseIn(ctx context.Context, c config.ClickHouse, getenv func(string) (string, bool), db string) (driver.Conn, error) {
	pw, err := c.Password(getenv)
	if err != nil {
		return nil, err
	}
	tc, err := tlsConfig("clickhouse.tls", c.TLS)
	if err != nil {
		return nil, err
	}
	return chschema.Open(ctx, chschema.ConnOptions{
		Addr: c.Addr, Username: c.Username, Password: pw, DialTimeout: c.DialTimeout,
		ReadTimeout: c.ReadTimeout, MaxOpenConns: c.MaxOpenConns, Compression: c.Compression, TLS: tc, Database: db, Cluster: c.Cluster,
	})
}

// newRegistry returns a registry with Go runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// pipeline is the running ingest service: admin server, ClickHouse, ingester.
type pipeline struct {
	log      *slog.Logger
	admin    *telemetry.Admin
	conn     driver.Conn
	ingester *ingest.Ingester
	windows  *detect.WindowRunner // nil when no window detector is enabled
	outbox   *revoke.Outbox       // nil without the ingest role
	alerts   *alerts.Sender       // nil when no Alertmanager is configured
	revoker  *revoke.Revoker      // nil without the respond role

	stopRetention context.CancelFunc
	retentionDone chan struct{}
	stopTracing   func(context.Context) error
}

// startRetention drops expired day partitions at start and then every
// clickhouse.retention.check_interval, until stop.
func (p *pipeline) startRetention(c config.ClickHouse, reg prometheus.Registerer) {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_retention_partitions_dropped_total", Help: "Day partitions dropped by retention, by table.",
	}, []string{"table"})
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_retention_errors_total", Help: "Retention passes that failed (retried at the next interval).",
	})
	reg.MustRegister(dropped, failures)
	ctx, cancel := context.WithCancel(context.Background())
	p.stopRetention, p.retentionDone = cancel, make(chan struct{})
	go func() {
		defer close(p.retentionDone)
		t := time.NewTicker(c.Retention.CheckInterval)
		defer t.Stop()
		for {
			for _, table := range chschema.RetainedTables {
				days := c.Retention.Days()[table]
				parts, err := chschema.DropExpired(ctx, p.conn, c.Database, c.Cluster, table, days, time.Now())
				if len(parts) > 0 {
					dropped.WithLabelValues(table).Add(float64(len(parts)))
					p.log.Info("retention: dropped expired partitions", "table", table, "keep_days", days, "partitions", parts)
				}
				if err != nil && ctx.Err() == nil {
					failures.Inc()
					p.log.Warn("retention", "table", table, "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// roles says which parts of vigil a process runs (vigil run --roles).
type roles struct {
	// ingest consumes session events, detects and produces action intents.
	ingest bool
	// respond consumes action intents and executes them at the session API.
	respond bool
}

// allRoles is the default: one process does everything.
var allRoles = roles{ingest: true, respond: true}

// parseRoles reads a comma-separated --roles value.
func parseRoles(s string) (roles, error) {
	var r roles
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "ingest":
			r.ingest = true
		case "respond":
			r.respond = true
		case "":
		default:
			return r, fmt.Errorf("--roles: unknown role %q (want ingest, respond or both, comma-separated)", strings.TrimSpace(p))
		}
	}
	if !r.ingest && !r.respond {
		return r, fmt.Errorf("--roles: name at least one of ingest, respond")
	}
	return r, nil
}

// newAdapter builds the session API adapter of the revoke.adapter section;
// nil for kind none (every action is then recorded as dry_run).
func newAdapter(c revoke.Config) (revoke.Adapter, error) {
	if c.Adapter.Kind == revoke.AdapterNone {
		return nil, nil
	}
	client, err := revoke.NewHTTPClient(c.Adapter, c.Concurrency)
	if err != nil {
		return nil, err
	}
	switch c.Adapter.Kind {
	case revoke.AdapterHTTP:
		return httpapi.New(c.Adapter, client)
	case revoke.AdapterKratos:
		return kratos.New(c.Adapter, client)
	case revoke.AdapterKeycloak:
		return keycloak.New(c.Adapter, client)
	case revoke.AdapterAuth0:
		return auth0.New(c.Adapter, client)
	}
	return nil, fmt.Errorf("revoke.adapter.kind: %q is not built in", c.Adapter.Kind)
}

// actionOf describes, for an alert, what vigil does about an anomaly
// under the revocation policy.
func actionOf(policy *revoke.Policy, c revoke.Config) func(*detect.Anomaly) string {
	dry := c.DryRun || c.Adapter.Kind == revoke.AdapterNone
	return func(a *detect.Anomaly) string {
		if a.Detector == revoke.DetectorRevoke {
			return "none: this is the revoker's own alert"
		}
		act, rule := policy.Decide(a)
		if act == revoke.AlertOnly {
			if a.Shadow {
				return "alert only (detector in shadow mode)"
			}
			return "alert only"
		}
		in := revoke.NewIntent(a, act, rule, a.DetectedAt)
		s := fmt.Sprintf("%s requested (action %s, rule %q)", act, in.ID, in.Rule)
		if dry {
			s += " in dry-run: recorded, not sent"
		}
		return s
	}
}

// startPipeline connects to ClickHouse (retrying until ctx ends), migrates
// unless told not to, and starts the roles: sinks before sources (the
// revoker before the ingester that feeds it).
func startPipeline(ctx context.Context, cfg *config.Config, env *cmdEnv, log *slog.Logger, migrate bool, rs roles) (*pipeline, error) {
	reg := newRegistry()
	token, err := cfg.Admin.Token()
	if err != nil {
		return nil, err
	}
	p := &pipeline{log: log, admin: telemetry.NewAdmin(telemetry.AdminOptions{Listen: cfg.Admin.Listen, Pprof: cfg.Admin.Pprof, Token: token}, reg, log)}
	if err := p.admin.Start(ctx); err != nil {
		return nil, err
	}
	if cfg.Admin.Listen != "" {
		log.Info("admin listening", "addr", p.admin.Addr())
	}
	var migrated atomic.Pointer[error] // read by /readyz while start-up retries
	setMigrated := func(err error) { migrated.Store(&err) }
	setMigrated(fmt.Errorf("waiting for clickhouse"))
	p.admin.AddCheck("clickhouse schema", func() error { return *migrated.Load() })

	// Connect and migrate, retrying: ClickHouse may start after vigil.
	for attempt := 0; ; attempt++ {
		err := func() error {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			conn, err := openClickHouse(cctx, cfg.ClickHouse, env.getenv)
			if err != nil {
				return err
			}
			if migrate {
				res, err := chschema.MigrateCluster(cctx, conn, cfg.ClickHouse.Database, cfg.ClickHouse.Cluster)
				if err != nil {
					conn.Close()
					return err
				}
				log.Info("clickhouse schema migrated", "database", cfg.ClickHouse.Database, "applied", res.Applied, "version", res.Current)
			} else {
				pending, err := chschema.Pending(cctx, conn, cfg.ClickHouse.Database)
				if err != nil {
					conn.Close()
					return err
				}
				if len(pending) > 0 {
					conn.Close()
					return ingest.Permanent(fmt.Errorf("--no-migrate: database %s has pending migrations %v; run vigil migrate", cfg.ClickHouse.Database, pending))
				}
			}
			p.conn = conn
			return nil
		}()
		if err == nil {
			break
		}
		if ingest.IsPermanent(err) {
			p.admin.Shutdown(context.Background())
			return nil, err
		}
		setMigrated(err)
		wait := min(time.Duration(1<<min(attempt, 5))*time.Second, 30*time.Second)
		log.Warn("clickhouse not ready; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			p.admin.Shutdown(context.Background())
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	setMigrated(nil)

	tp, stopTracing, err := telemetry.NewTracerProvider(ctx, cfg.Tracing.OTLPEndpoint, cfg.Tracing.SampleRatio, cfg.Tracing.ServiceName, version)
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	p.stopTracing = stopTracing
	// tracer returns the tracer of a package, nil when tracing is off:
	// then the ingester, the outbox and the revoker do no trace work.
	tracer := func(string) trace.Tracer { return nil }
	if env.tracerProvider != nil { // a test's in-memory exporter
		tp = env.tracerProvider
	}
	if cfg.Tracing.OTLPEndpoint != "" || env.tracerProvider != nil {
		tracer = func(pkg string) trace.Tracer { return tp.Tracer("github.com/vigilhq/vigil/" + pkg) }
	}
	if cfg.Tracing.OTLPEndpoint != "" {
		log.Info("tracing to OTLP/HTTP collector", "endpoint", cfg.Tracing.OTLPEndpoint, "sample_ratio", cfg.Tracing.SampleRatio)
	}

	dialer, transport, err := kafkaClients(cfg.Kafka)
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	pseudonyms, err := cfg.Privacy.Key()
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	if pseudonyms.Enabled() {
		log.Info("storing user, session and family ids and IPs as pseudonyms (privacy.key_file)")
	}
	anomalySink := ingest.NewClickHouseSink(p.conn, cfg.ClickHouse.Database)
	revokeMetrics := revoke.NewMetrics(reg)
	policy, err := revoke.NewPolicy(cfg.Revoke.Policy)
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	// Alerts go out for anomalies from every source (stream and window
	// detectors, the revoker); the sender starts before all of them.
	alertAnomalies := func(context.Context, []detect.Anomaly) error { return nil }
	if cfg.Alerts.Enabled() {
		snd, err := alerts.NewSender(alerts.Options{
			Config: cfg.Alerts, Action: actionOf(policy, cfg.Revoke), Active: alerts.ClickHouseActive(p.conn, cfg.ClickHouse.Database),
			Metrics: alerts.NewMetrics(reg), Logger: log.With("component", "alerts"),
		})
		if err != nil {
			p.stop(context.Background())
			return nil, err
		}
		if err := snd.Start(ctx); err != nil {
			p.stop(context.Background())
			return nil, err
		}
		p.alerts = snd
		alertAnomalies = snd.Handle
		log.Info("alerting", "alertmanagers", len(cfg.Alerts.Alertmanagers), "min_severity", cfg.Alerts.MinSeverity)
	}
	writeAnomalies := func(ctx context.Context, as []detect.Anomaly) error {
		// The ingester's anomalies name pseudonyms already; the revoker's
		// and the window detectors' go through here: stored and alerted
		// as pseudonyms (Pseudonymize leaves pseudonyms as they are).
		if pseudonyms.Enabled() {
			as = slices.Clone(as)
			for i := range as {
				as[i].Pseudonymize(pseudonyms)
			}
		}
		if err := anomalySink.WriteAnomalies(ctx, as); err != nil {
			return err
		}
		return alertAnomalies(ctx, as)
	}
	if err := revoke.CheckTopic(ctx, cfg.Kafka.Brokers, transport, cfg.Revoke.Topic); err != nil {
		p.stop(context.Background())
		return nil, err
	}
	if rs.respond {
		adapter, err := newAdapter(cfg.Revoke)
		if err != nil {
			p.stop(context.Background())
			return nil, err
		}
		rv, err := revoke.NewRevoker(revoke.RevokerOptions{
			Config: cfg.Revoke, Brokers: cfg.Kafka.Brokers, Dialer: dialer, Adapter: adapter,
			SessionTimeout: cfg.Kafka.SessionTimeout, RebalanceTimeout: cfg.Kafka.RebalanceTimeout, HeartbeatInterval: cfg.Kafka.HeartbeatInterval,
			Store: revoke.NewClickHouseStore(p.conn, cfg.ClickHouse.Database).WithPseudonyms(pseudonyms), Raise: writeAnomalies,
			Pseudonyms: pseudonyms, Tracer: tracer("revoke"),
			Metrics: revokeMetrics, Logger: log.With("component", "revoker"),
		})
		if err != nil {
			p.stop(context.Background())
			return nil, err
		}
		if err := rv.Start(ctx); err != nil {
			p.stop(context.Background())
			return nil, err
		}
		p.revoker = rv
		p.admin.AddCheck("revoker", rv.Ready)
		mode := "enforcing"
		if rv.Guard().DryRun() {
			mode = "dry-run"
		}
		log.Info("revoker started", "adapter", cfg.Revoke.Adapter.Kind, "mode", mode, "topic", cfg.Revoke.Topic, "group", cfg.Revoke.Group)
	}
	if !rs.ingest {
		return p, nil
	}
	ob, err := revoke.NewOutbox(revoke.OutboxOptions{
		Policy: policy, Brokers: cfg.Kafka.Brokers, Topic: cfg.Revoke.Topic, Transport: transport,
		Tracer: tracer("revoke"), Metrics: revokeMetrics, Logger: log.With("component", "outbox"),
	})
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	p.outbox = ob
	detectMetrics := detect.NewMetrics(reg)
	detectors, err := detect.NewRegistry(cfg.Detect, detect.RegistryOptions{Metrics: detectMetrics, Logger: log})
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	specs, err := slo.Configured(cfg.SLO.SpecFile)
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	slos, err := slo.NewSet(specs)
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	// The window detectors run in whichever process owns partition 0.
	windows, err := detect.NewWindows(cfg.Detect, detect.WindowOptions{Conn: p.conn, Database: cfg.ClickHouse.Database, Metrics: detectMetrics})
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	var onAssign func([]int)
	if windows != nil {
		r, err := detect.NewWindowRunner(detect.RunnerOptions{
			Windows: windows, Times: detect.ClickHouseTimes(p.conn, cfg.ClickHouse.Database),
			Write: func(ctx context.Context, as []detect.Anomaly) error {
				if err := writeAnomalies(ctx, as); err != nil {
					return err
				}
				return ob.Handle(ctx, as)
			},
			Logger: log.With("component", "windows"),
		})
		if err != nil {
			p.stop(context.Background())
			return nil, err
		}
		if err := r.Start(ctx); err != nil {
			p.stop(context.Background())
			return nil, err
		}
		p.windows = r
		onAssign = func(ids []int) { r.SetActive(slices.Contains(ids, 0)) }
	}
	in, err := ingest.New(ingest.Options{
		Config: cfg.Ingest, Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group,
		DLQTopic: cfg.Kafka.DLQTopic, SessionTimeout: cfg.Kafka.SessionTimeout, RebalanceTimeout: cfg.Kafka.RebalanceTimeout,
		HeartbeatInterval: cfg.Kafka.HeartbeatInterval, Dialer: dialer, Transport: transport,
		Sink: ingest.NewClickHouseSink(p.conn, cfg.ClickHouse.Database), Pseudonyms: pseudonyms,
		Metrics: ingest.NewMetrics(reg), Logger: log,
		Tracer: tracer("ingest"), Detectors: detectors, DetectMetrics: detectMetrics, SLOs: slos, SLOMetrics: slo.NewMetrics(reg, slos),
		History:  detect.NewClickHouseHistory(p.conn, cfg.ClickHouse.Database),
		OnAssign: onAssign,
		OnAnomalies: func(ctx context.Context, as []detect.Anomaly) error {
			_ = alertAnomalies(ctx, as) // never fails: the sender only queues
			return ob.Handle(ctx, as)
		},
	})
	if err != nil {
		p.stop(context.Background())
		return nil, err
	}
	if err := in.Start(ctx); err != nil {
		p.stop(context.Background())
		return nil, err
	}
	p.ingester = in
	p.admin.AddCheck("ingest", in.Ready)
	p.startRetention(cfg.ClickHouse, reg)
	return p, nil
}

// stop shuts down in reverse order of start: sources, then sinks, then
// admin. The window runner goes first, while this process still owns
// partition 0, so its last round judges the windows complete by then.
func (p *pipeline) stop(ctx context.Context) error {
	var err error
	if p.stopRetention != nil {
		p.stopRetention()
		<-p.retentionDone
	}
	if p.windows != nil {
		err = p.windows.Shutdown(ctx)
	}
	if p.ingester != nil {
		if ierr := p.ingester.Shutdown(ctx); ierr != nil {
			err = ierr
		}
	}
	if p.outbox != nil {
		if oerr := p.outbox.Close(); oerr != nil && err == nil {
			err = oerr
		}
	}
	if p.revoker != nil {
		if rerr := p.revoker.Shutdown(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}
	if p.alerts != nil {
		if aerr := p.alerts.Shutdown(ctx); aerr != nil && err == nil {
			err = aerr
		}
	}
	if p.stopTracing != nil {
		if terr := p.stopTracing(ctx); terr != nil && err == nil {
			err = terr
		}
	}
	if p.conn != nil {
		p.conn.Close()
	}
	if aerr := p.admin.Shutdown(ctx); aerr != nil && err == nil {
		err = aerr
	}
	return err
}
