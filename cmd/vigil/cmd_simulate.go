package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/sim"
	"github.com/vigilhq/vigil/sim/sessionapi"
	"github.com/vigilhq/vigil/sim/truth"
)

func cmdSimulate() command {
	c := command{name: "simulate", summary: "play a simulated session service into Kafka: traffic, attacks, outages, a revocation API", usage: `
Usage:
  vigil simulate --brokers HOST:PORT [--topic session-events] [--users N] [--rate EV_PER_S]
                 [--duration D] [--scenario a,b,…|all] [--seed S] [--speedup K]
                 [--api-listen ADDR] [--truth FILE]

Simulates a session service for N users (logins with typos and MFA
failures, sessions on 1–3 devices, validations, refresh-token rotation,
logouts, idle and absolute expiry, a diurnal and weekly load curve) and
produces its events to Kafka, keyed by family. Scenarios run one after
another across the run; each writes its ground truth (scenario, subjects,
start, end, first offending event) to --truth as JSON lines, which
` + "`vigil score`" + ` reads.

With --api-listen it also serves the session service's revocation API
(POST /revocations, DESIGN.md §6) and obeys it: revoked sessions stop
validating and refreshing (except under revocation_not_enforced). Every
revocation received is appended to the truth file.

--rate is in events per second of event time; --duration is event time.
--speedup K runs event time K times faster than the wall clock (the run
ends at about now); --speedup 0 produces as fast as Kafka takes it.

Scenarios: ` + strings.Join(sim.ScenarioNames(), ", ") + `

Examples:
  vigil simulate --brokers localhost:9092 --rate 2000 --duration 10m \
      --scenario token_theft_replay,credential_stuffing --api-listen :8085 --truth truth.jsonl
  vigil simulate --brokers localhost:9092 --duration 6h --speedup 60 --scenario all
  vigil simulate --brokers localhost:9092 --users 100000 --duration 1h --speedup 0   # load test`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		cfgPath := fs.String("config", "", "vigil config file: its kafka section (brokers, TLS, SASL) is used unless --brokers is given")
		brokers := fs.String("brokers", "", "Kafka bootstrap brokers, comma-separated (default: the config's, else localhost:9092)")
		topic := fs.String("topic", "session-events", "topic to produce to")
		every := fs.Duration("progress", 5*time.Second, "print a progress line this often (0: never)")
		linger := fs.Duration("linger", 10*time.Second, "with --api-listen: keep serving revocations this long after the last event, for late detections")
		o := simFlags(fs)
		if done, err := parseFlags(fs, args); done {
			return err
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*cfgPath, env.getenv)
		if err != nil {
			return err
		}
		if *brokers != "" {
			cfg.Kafka.Brokers = strings.Split(*brokers, ",")
		}
		_, transport, err := kafkaClients(cfg.Kafka)
		if err != nil {
			return err
		}
		defer transport.CloseIdleConnections()
		simCfg, err := o.config(time.Now())
		if err != nil {
			return err
		}
		if err := topicExists(ctx, transport, cfg.Kafka.Brokers, *topic); err != nil {
			return err
		}
		w := simWriter(cfg.Kafka.Brokers, *topic, transport)
		defer w.Close()
		run, err := startSimulation(ctx, simCfg, o, w)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "simulating %d users at %.0f events/s of event time for %s (speedup %g) into %s on %s\n",
			simCfg.Users, simCfg.Rate, simCfg.Duration, o.speedup, *topic, strings.Join(cfg.Kafka.Brokers, ","))
		if run.api != nil {
			fmt.Fprintf(env.stdout, "revocation API at http://%s%s\n", run.api.Addr(), sessionapi.Path)
		}
		for _, sp := range simCfg.Scenarios {
			fmt.Fprintf(env.stdout, "  %-24s at +%s\n", sp.Name, sp.At)
		}
		done := make(chan error, 1)
		go func() { done <- run.prod.Run(ctx) }()
		var tickC <-chan time.Time
		if *every > 0 {
			tick := time.NewTicker(*every)
			defer tick.Stop()
			tickC = tick.C
		}
		var runErr error
	loop:
		for {
			select {
			case runErr = <-done:
				break loop
			case <-tickC:
				st := run.sim.Stats()
				fmt.Fprintf(env.stdout, "  event time %s   produced %d   live sessions %d   revocations %d\n",
					run.sim.Now().Format(time.DateTime), run.prod.Produced(), st.LiveSessions, st.Revocations)
			}
		}
		if run.api != nil && runErr == nil && *linger > 0 {
			fmt.Fprintf(env.stdout, "all events produced; serving revocations for %s more\n", *linger)
			select {
			case <-ctx.Done():
			case <-time.After(*linger):
			}
		}
		if err := run.close(context.Background()); err != nil && runErr == nil {
			runErr = err
		}
		fmt.Fprintf(env.stdout, "produced %d events", run.prod.Produced())
		if o.truthPath != "" {
			fmt.Fprintf(env.stdout, "; ground truth in %s", o.truthPath)
		}
		fmt.Fprintln(env.stdout)
		if errors.Is(runErr, context.Canceled) {
			return nil
		}
		return runErr
	}
	return c
}

// simOptions are the simulator settings shared by simulate and demo.
type simOptions struct {
	users, tenants, sampleRate int
	rate, speedup              float64
	duration                   time.Duration
	scenarios                  string
	seed                       uint64
	flat                       bool // no load curve
	truthPath                  string
	api                        sessionapi.Config
	apiTokenFile, apiKeyFile   string
}

// simFlags registers the simulator flags.
func simFlags(fs *flag.FlagSet) *simOptions {
	o := &simOptions{api: sessionapi.DefaultConfig()}
	fs.IntVar(&o.users, "users", 10000, "simulated users")
	fs.IntVar(&o.tenants, "tenants", 1, "spread users over this many tenants")
	fs.IntVar(&o.sampleRate, "sample-rate", 1, "emit one in N session.validated, with sample_rate N")
	fs.Float64Var(&o.rate, "rate", 1000, "events per second of event time")
	fs.Float64Var(&o.speedup, "speedup", 1, "event time runs K times faster than the wall clock; 0 = as fast as possible")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "event time to simulate")
	fs.StringVar(&o.scenarios, "scenario", "", "scenarios to run, comma-separated, or all")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: same seed, same stream")
	fs.BoolVar(&o.flat, "flat", false, "no diurnal and weekly load curve: the load stays at --rate")
	fs.StringVar(&o.truthPath, "truth", "", "write ground truth (JSON lines) to this file")
	fs.StringVar(&o.api.Listen, "api-listen", "", "serve the revocation API on this address (e.g. :8085)")
	fs.StringVar(&o.apiTokenFile, "api-token-file", "", "require this bearer token (read from the file) on the revocation API")
	fs.StringVar(&o.apiKeyFile, "api-hmac-key-file", "", "require X-Vigil-Signature with this HMAC key (read from the file)")
	fs.Float64Var(&o.api.ErrorRate, "api-error-rate", 0, "fraction of revocation requests answered 503")
	fs.Float64Var(&o.api.ThrottleRate, "api-throttle-rate", 0, "fraction of revocation requests answered 429 with Retry-After")
	fs.DurationVar(&o.api.Latency, "api-latency", 0, "latency added to every revocation request")
	fs.Float64Var(&o.api.TimeoutRate, "api-timeout-rate", 0, "fraction of revocation requests processed but answered only after --api-timeout-delay (the client times out)")
	fs.DurationVar(&o.api.TimeoutDelay, "api-timeout-delay", 30*time.Second, "how long an injected timeout holds the answer")
	return o
}

// config turns the options into a simulator config; with a speedup the
// event-time start is placed so the run ends at about now.
func (o *simOptions) config(now time.Time) (sim.Config, error) {
	if o.speedup < 0 {
		return sim.Config{}, errUsage("--speedup must be 0 or more, got %g", o.speedup)
	}
	if o.duration <= 0 {
		return sim.Config{}, errUsage("--duration must be positive, got %s", o.duration)
	}
	start := now.Add(-o.duration)
	if o.speedup > 0 {
		start = now.Add(-o.duration + time.Duration(float64(o.duration)/o.speedup))
	}
	var names []string
	switch o.scenarios {
	case "":
	case "all":
		names = sim.ScenarioNames()
	default:
		names = strings.Split(o.scenarios, ",")
	}
	specs, err := sim.Spread(names, o.duration)
	if err != nil {
		return sim.Config{}, errUsage("--scenario: %v", err)
	}
	c := sim.Config{Seed: o.seed, Users: o.users, Tenants: o.tenants, Rate: o.rate, Start: start.UTC().Truncate(time.Millisecond),
		Duration: o.duration, LoadCurve: !o.flat, SampleRate: o.sampleRate, Scenarios: specs}
	if err := c.Defaults().Validate(); err != nil {
		return c, errUsage("%v", err)
	}
	return c, nil
}

// simWriter is the Kafka writer the simulator produces with: keyed by
// family (Hash keeps a family on one partition), large batches, acks from
// all replicas.
func simWriter(brokers []string, topic string, tr *kafka.Transport) *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, Transport: tr,
		BatchSize: 5000, BatchBytes: 8 << 20, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll}
}

// simulation is a running simulator with its producer, API and truth file.
type simulation struct {
	sim   *sim.Simulator
	prod  *sim.Producer
	api   *sessionapi.Server
	truth *truth.Writer
	file  *os.File
}

// startSimulation builds the simulator, opens the truth file and starts the
// revocation API (sinks before the source); the caller runs prod.
func startSimulation(ctx context.Context, cfg sim.Config, o *simOptions, w sim.MessageWriter) (*simulation, error) {
	r := &simulation{}
	var opts []sim.Option
	if o.truthPath != "" {
		f, err := os.Create(o.truthPath)
		if err != nil {
			return nil, fmt.Errorf("--truth: %w", err)
		}
		r.file, r.truth = f, truth.NewWriter(f)
		opts = append(opts, sim.WithTruth(func(s truth.Scenario) { _ = r.truth.Scenario(s) }))
	}
	s, err := sim.New(cfg, opts...)
	if err != nil {
		r.closeFile()
		return nil, err
	}
	r.sim = s
	if o.api.Listen != "" {
		api := o.api
		api.Seed = cfg.Seed // injected failures are reproducible too
		var err error
		if o.apiTokenFile != "" {
			api.BearerToken, err = config.ReadSecret("--api-token-file", o.apiTokenFile)
		}
		if err == nil && o.apiKeyFile != "" {
			api.HMACKey, err = config.ReadSecret("--api-hmac-key-file", o.apiKeyFile)
		}
		if err != nil { // an empty file must not silently turn the check off
			r.closeFile()
			return nil, err
		}
		var sopts []sessionapi.Option
		if r.truth != nil {
			sopts = append(sopts, sessionapi.WithRecorder(func(v truth.Revocation) { _ = r.truth.Revocation(v) }))
		}
		srv, err := sessionapi.New(api, s, sopts...)
		if err == nil {
			err = srv.Start(ctx)
		}
		if err != nil {
			r.closeFile()
			return nil, fmt.Errorf("revocation API: %w", err)
		}
		r.api = srv
	}
	r.prod = sim.NewProducer(s, w, sim.Pacing{Speedup: o.speedup, Batch: 5000})
	return r, nil
}

// close stops the API, reports the truth of scenarios still running and
// flushes the truth file.
func (r *simulation) close(ctx context.Context) error {
	var errs []error
	if r.api != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		errs = append(errs, r.api.Shutdown(ctx))
		cancel()
	}
	r.sim.Close()
	if r.truth != nil {
		errs = append(errs, r.truth.Close())
	}
	errs = append(errs, r.closeFile())
	return errors.Join(errs...)
}

func (r *simulation) closeFile() error {
	if r.file == nil {
		return nil
	}
	err := r.file.Close()
	r.file = nil
	return err
}

// topicExists fails fast, naming the flag, when topic is not on the
// brokers: simulate never creates topics.
func topicExists(ctx context.Context, tr *kafka.Transport, brokers []string, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("kafka metadata from %s (--brokers): %w", strings.Join(brokers, ","), err)
	}
	for _, t := range md.Topics {
		if t.Name == topic && t.Error == nil && len(t.Partitions) > 0 {
			return nil
		}
		if t.Name == topic && t.Error != nil {
			return fmt.Errorf("topic %q (--topic) is not usable: %w; create it first", topic, t.Error)
		}
	}
	return fmt.Errorf("topic %q (--topic) does not exist on %s; create it first", topic, strings.Join(brokers, ","))
}
