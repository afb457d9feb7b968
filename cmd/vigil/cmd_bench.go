package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/localkafka"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
	"github.com/vigilhq/vigil/sim"
)

// benchParts are the parts of vigil bench, in the order they run.
var benchParts = []string{"vigil", "kafka-engine", "pipe", "latency", "memory"}

func cmdBench() command {
	c := command{name: "bench", summary: "measure vigil against ClickHouse's Kafka engine and a kcat pipe on this machine, then time to revoke and detector memory", usage: `
Usage:
  vigil bench [--events 2000000] [--partitions 4] [--runs 3] [--skip PART,…] [--format table|json]
              [--out FILE] [--profile FILE] [--thefts 300] [--background 20000] [--families 1000000] [--clickhouse ADDR]

One command, on this machine, with the same generated events (the
simulator's default traffic: size and mix) in one topic of an in-process
Kafka (kfake, over TCP) and the same table layout (vigil's migrations:
events and the event_subjects timeline table) in a private ClickHouse:

  vigil         vigil run --roles ingest: validation, stream detectors,
                at-least-once commits after each insert;
  kafka-engine  ClickHouse's Kafka table engine with materialized views
                into the same tables;
  pipe          kcat -C … | clickhouse-client --query "INSERT … FORMAT
                JSONEachRow" (skipped without kcat);

each timed from its start until every event and its timeline rows are
stored, with the CPU seconds per million events (its processes plus the
ClickHouse server) and peak memory. They take turns, --runs rounds (each
into fresh tables, from the start of the topic), and the median run of
each is reported, with the spread; then

  latency       replay → revocation: a replayed refresh token handed to
                Kafka until its family's revocation reaches the session API
                (p50, p99), under background traffic, through vigil's whole
                pipeline in this process;
  memory        heap bytes per tracked family in the stream detectors with
                --families families.

Prints a table (or JSON); --out also writes the JSON report to a file.
--skip leaves parts out (vigil always runs unless skipped: it is the
reference). The kafka-engine part needs the private server (not
--clickhouse). Takes about five minutes with the defaults.

Examples:
  vigil bench
  vigil bench --events 500000 --skip latency,memory
  vigil bench --format json --out bench.json`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		events := fs.Int("events", 2_000_000, "events in the topic each contender ingests")
		partitions := fs.Int("partitions", 4, "partitions of the topic")
		runs := fs.Int("runs", 3, "rounds of the throughput contenders; the median of each is reported")
		skip := fs.String("skip", "", "parts to leave out, comma-separated: "+strings.Join(benchParts, ", "))
		format := fs.String("format", "table", "table or json")
		out := fs.String("out", "", "also write the JSON report to this file")
		thefts := fs.Int("thefts", 300, "latency: replayed tokens to time")
		background := fs.Int("background", 20_000, "latency: background events/s")
		families := fs.Int("families", 1_000_000, "memory: families to track")
		chAddr := fs.String("clickhouse", "", "use this ClickHouse (host:port, native) instead of starting one; skips kafka-engine")
		profile := fs.String("profile", "", "write a CPU profile of the vigil contender (pprof format) to this file")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		skipped := map[string]bool{}
		for _, p := range strings.Split(*skip, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if !slices.Contains(benchParts, p) {
				return errUsage("--skip: %q is not one of %s", p, strings.Join(benchParts, ", "))
			}
			skipped[p] = true
		}
		switch {
		case *events < 10_000:
			return errUsage("--events must be at least 10000")
		case *partitions < 1:
			return errUsage("--partitions must be positive")
		case *runs < 1:
			return errUsage("--runs must be positive")
		case *format != "table" && *format != "json":
			return errUsage("--format: %q is not table or json", *format)
		case *thefts < 10 || *background < 100 || *families < 100_000:
			return errUsage("--thefts (≥ 10), --background (≥ 100) and --families (≥ 100000: fewer is lost in the noise of the heap) are too small")
		}
		b := &benchRun{env: env, events: *events, partitions: *partitions, skipped: skipped, chAddr: *chAddr, profile: *profile, runs: *runs}
		rep, err := b.run(ctx, *thefts, *background, *families)
		if err != nil {
			return err
		}
		if *out != "" {
			f, err := os.Create(*out)
			if err != nil {
				return err
			}
			if err := rep.WriteJSON(f); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
		if *format == "json" {
			return rep.WriteJSON(env.stdout)
		}
		return rep.WriteTable(env.stdout)
	}
	return c
}

// benchRun is one vigil bench.
type benchRun struct {
	env                *cmdEnv
	events, partitions int
	runs               int // rounds of the throughput contenders
	round              int // the current round, from 0: names consumer groups
	skipped            map[string]bool
	chAddr             string
	profile            string // where to write vigil's CPU profile; "" for none

	srv     *chserver.Server // nil with --clickhouse
	conn    driver.Conn
	brokers []string
}

const benchTopic = "bench-events"

// benchStall is how long a contender may store nothing before the bench
// takes the missing events as lost (ClickHouse 18.16's Kafka engine drops
// a message now and then) instead of waiting forever.
const benchStall = 30 * time.Second

func (b *benchRun) say(format string, args ...any) {
	fmt.Fprintf(b.env.stderr, "bench: "+format+"\n", args...)
}

func (b *benchRun) run(ctx context.Context, thefts, background, families int) (bench.Report, error) {
	rep := bench.Report{Machine: machine(), Events: b.events, Partitions: b.partitions, Runs: b.runs}
	addr := b.chAddr
	if addr == "" {
		srv, err := chserver.Start(ctx, chserver.Options{ExtraConfig: bench.KafkaEngineConfig, ExtraProfile: bench.KafkaEngineProfile})
		if err != nil {
			if errors.Is(err, chserver.ErrNotInstalled) {
				return rep, fmt.Errorf("%w; or run `make bench`, which installs it, or pass --clickhouse host:port", err)
			}
			return rep, err
		}
		defer srv.Close()
		b.srv, addr = srv, srv.Addr()
	}
	conn, err := chschema.Open(ctx, chschema.ConnOptions{Addr: []string{addr}, Username: "default", ReadTimeout: 10 * time.Minute})
	if err != nil {
		return rep, err
	}
	defer conn.Close()
	b.conn = conn
	cluster, err := localkafka.Start(map[string]int{benchTopic: b.partitions, "session-events": 4, "vigil.dlq": 1, "vigil.actions": 1})
	if err != nil {
		return rep, fmt.Errorf("start in-process kafka: %w", err)
	}
	defer cluster.Close()
	b.brokers = cluster.ListenAddrs()
	b.say("clickhouse %s, kafka %s; producing %d events to %s (%d partitions)", addr, strings.Join(b.brokers, ","), b.events, benchTopic, b.partitions)
	bytes, err := b.produce(ctx)
	if err != nil {
		return rep, err
	}
	rep.EventBytes = float64(bytes) / float64(b.events)

	// The contenders take turns, round after round, so that a slow spell
	// of the machine falls on all of them alike.
	var subjects uint64
	var vigilRuns, engineRuns, pipeRuns []bench.Throughput
	for b.round = 0; b.round < b.runs; b.round++ {
		if !b.skipped["vigil"] {
			t, n, err := b.vigil(ctx)
			if err != nil {
				return rep, err
			}
			vigilRuns = append(vigilRuns, t)
			if b.round == 0 {
				subjects = n
			}
		}
		if !b.skipped["kafka-engine"] {
			t, err := b.kafkaEngine(ctx, subjects)
			if err != nil {
				return rep, err
			}
			engineRuns = append(engineRuns, t)
		}
		if !b.skipped["pipe"] {
			t, err := b.pipe(ctx, subjects, addr)
			if err != nil {
				return rep, err
			}
			pipeRuns = append(pipeRuns, t)
		}
	}
	for _, runs := range [][]bench.Throughput{vigilRuns, engineRuns, pipeRuns} {
		if len(runs) > 0 {
			rep.Throughput = append(rep.Throughput, bench.Median(runs))
		}
	}
	rep.ComputeRatios()
	if !b.skipped["latency"] {
		b.say("latency: %d thefts under %d events/s of background traffic", thefts, background)
		db := "bench_latency"
		if err := b.freshDB(ctx, db, false); err != nil {
			return rep, err
		}
		l, err := measureTimeToRevoke(ctx, latencyOptions{Brokers: b.brokers, ClickHouse: addr, Database: db, Thefts: thefts, Rate: background})
		if err != nil {
			return rep, err
		}
		rep.Latency = &l
	}
	if !b.skipped["memory"] {
		b.say("memory: %d families", families)
		per, err := detect.StateBytesPerFamily(detect.DefaultConfig(), families)
		if err != nil {
			return rep, err
		}
		rep.Memory = &bench.Memory{Families: families, BytesPerFamily: per}
	}
	for _, db := range []string{"bench_vigil", "bench_kafka", "bench_pipe", "bench_latency"} {
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	}
	return rep, nil
}

// produce writes the generated events to the topic and returns their bytes.
func (b *benchRun) produce(ctx context.Context) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.DefaultProduceTopic(benchTopic),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	s := sim.NewStream(sim.StreamConfig{Seed: 9, Users: 20_000})
	var bytes int64
	recs := make([]*kgo.Record, 0, 5000)
	for i := range b.events {
		m := s.Next()
		bytes += int64(len(m.Value))
		recs = append(recs, &kgo.Record{Key: m.Key, Value: m.Value})
		if len(recs) == cap(recs) || i == b.events-1 {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				return 0, err
			}
			recs = recs[:0]
		}
	}
	return bytes, nil
}

// freshDB drops db, creates it with vigil's migrations unless bare, and
// waits for the server's background merges (of the previous contender's
// parts) to end, so each contender starts on a quiet server.
func (b *benchRun) freshDB(ctx context.Context, db string, bare bool) error {
	if err := b.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return err
	}
	if !bare {
		if _, err := chschema.Migrate(ctx, b.conn, db); err != nil {
			return err
		}
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		var merges uint64
		if err := b.conn.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&merges); err != nil || merges == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

func (b *benchRun) serverPID() int {
	if b.srv == nil {
		return 0
	}
	return b.srv.PID()
}

// vigil runs `vigil run --roles ingest` (this binary) and returns its
// figures and the timeline rows it stored.
func (b *benchRun) vigil(ctx context.Context) (bench.Throughput, uint64, error) {
	const db = "bench_vigil"
	t := bench.Throughput{Name: "vigil", Notes: "vigil run --roles ingest: strict validation of every event, stream detectors, columnar inserts, offsets committed after each insert"}
	if err := b.freshDB(ctx, db, false); err != nil {
		return t, 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return t, 0, err
	}
	cmd := exec.Command(self, "run", "--roles", "ingest", "--no-migrate")
	cmd.Env = append(withoutVigilEnv(os.Environ()),
		"VIGIL_KAFKA_BROKERS="+strings.Join(b.brokers, ","), "VIGIL_KAFKA_TOPIC="+benchTopic, "VIGIL_KAFKA_GROUP=bench-vigil-"+strconv.Itoa(b.round),
		"VIGIL_CLICKHOUSE_ADDR="+b.chAddrOrLocal(), "VIGIL_CLICKHOUSE_DATABASE="+db, "VIGIL_LOG_LEVEL=warn")
	admin := ""
	if b.profile != "" {
		if admin, err = freeLocalAddr(); err != nil {
			return t, 0, err
		}
	}
	cmd.Env = append(cmd.Env, "VIGIL_ADMIN_LISTEN="+admin, "VIGIL_ADMIN_PPROF="+strconv.FormatBool(b.profile != ""))
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	b.say("vigil: %s", strings.Join(cmd.Args, " "))
	run := bench.Start(b.conn, db, b.events, 0, b.serverPID())
	run.Stall = benchStall
	p, err := bench.StartProcess(cmd)
	if err != nil {
		return t, 0, err
	}
	defer p.Stop(30 * time.Second)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var profiled chan error
	if b.profile != "" {
		profiled = make(chan error, 1)
		// The profile spans about the expected run: pprof's endpoint
		// takes a fixed number of seconds.
		secs := max(2, b.events/150_000)
		go func() { profiled <- fetchProfile(wctx, admin, secs, b.profile) }()
	}
	if err := run.Wait(wctx, &t, p.Failed); err != nil {
		return t, 0, fmt.Errorf("%w\n%s", err, logs.String())
	}
	if profiled != nil {
		if err := <-profiled; err != nil {
			return t, 0, err
		}
		b.say("vigil: CPU profile in %s (go tool pprof %s)", b.profile, b.profile)
	}
	u, err := p.Usage()
	if err != nil {
		return t, 0, err
	}
	t.Finish(u)
	if n, err := bench.StoredBytes(ctx, b.conn, db); err == nil && t.Events > 0 {
		t.StoredBytesPerEvent = float64(n) / float64(t.Events)
	}
	subjects, err := bench.Subjects(ctx, b.conn, db)
	b.say("vigil: %.0f events/s", t.EventsPerSec)
	return t, subjects, err
}

// freeLocalAddr returns a loopback address with a port free right now.
func freeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// fetchProfile writes a CPU profile of secs seconds from the pprof
// endpoint of the vigil admin server at admin to file, waiting for the
// server to come up.
func fetchProfile(ctx context.Context, admin string, secs int, file string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			select {
			case <-ctx.Done():
				return fmt.Errorf("bench: profile: %w", err)
			case <-time.After(5 * time.Millisecond):
				continue
			}
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("bench: profile: %s from %s", resp.Status, admin)
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return fmt.Errorf("bench: profile: %w", err)
		}
		return f.Close()
	}
}

func (b *benchRun) chAddrOrLocal() string {
	if b.srv != nil {
		return b.srv.Addr()
	}
	return b.chAddr
}

// kafkaEngine runs ClickHouse's Kafka engine contender.
func (b *benchRun) kafkaEngine(ctx context.Context, subjects uint64) (bench.Throughput, error) {
	const db = "bench_kafka"
	// One consumer per core, at most one per partition: the engine's best.
	consumers := min(runtime.NumCPU(), b.partitions)
	t := bench.Throughput{Name: "kafka-engine", Notes: fmt.Sprintf("ClickHouse %s Kafka table engine, %d consumers (one per core), materialized views parsing each message (no validation; offsets committed before the views insert, so a failing insert loses the block)", b.version(ctx), consumers)}
	if b.srv == nil {
		t.Skipped = "needs the private ClickHouse (its <kafka> settings), not --clickhouse"
		return t, nil
	}
	if err := b.freshDB(ctx, db, false); err != nil {
		return t, err
	}
	b.say("kafka-engine: starting")
	run := bench.Start(b.conn, db, b.events, subjects, b.serverPID())
	run.Stall = benchStall
	if err := bench.StartKafkaEngine(ctx, b.conn, db, b.brokers[0], benchTopic, "bench-kafka-engine-"+strconv.Itoa(b.round), consumers); err != nil {
		return t, err
	}
	defer bench.StopKafkaEngine(context.WithoutCancel(ctx), b.conn, db)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := run.Wait(wctx, &t, nil); err != nil {
		return t, err
	}
	t.Finish(bench.Usage{}) // it runs inside the server
	b.say("kafka-engine: %.0f events/s", t.EventsPerSec)
	return t, nil
}

// pipe runs the kcat | clickhouse-client contender.
func (b *benchRun) pipe(ctx context.Context, subjects uint64, addr string) (bench.Throughput, error) {
	const db = "bench_pipe"
	t := bench.Throughput{Name: "pipe", Notes: "kcat -C | clickhouse-client INSERT … FORMAT JSONEachRow into a Null table with materialized views (no validation, no consumer group, nothing committed)"}
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if kcat, err = exec.LookPath("kafkacat"); err != nil {
			t.Skipped = "kcat is not installed (apt-get install kcat)"
			return t, nil
		}
	}
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		t.Skipped = "clickhouse-client is not installed"
		return t, nil
	}
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return t, err
	}
	port, _ := strconv.Atoi(portStr)
	if err := b.freshDB(ctx, db, false); err != nil {
		return t, err
	}
	b.say("pipe: %s | %s", filepath.Base(kcat), filepath.Base(client))
	run := bench.Start(b.conn, db, b.events, subjects, b.serverPID())
	run.Stall = benchStall
	p, err := bench.StartPipe(ctx, b.conn, db, kcat, client, b.brokers[0], benchTopic, port)
	if err != nil {
		return t, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := run.Wait(wctx, &t, p.Failed); err != nil {
		_, _ = p.Wait(context.Background())
		return t, err
	}
	u, err := p.Wait(wctx)
	if err != nil {
		return t, err
	}
	t.Finish(u)
	b.say("pipe: %.0f events/s", t.EventsPerSec)
	return t, nil
}

func (b *benchRun) version(ctx context.Context) string {
	var v string
	if err := b.conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "?"
	}
	return v
}

// withoutVigilEnv drops VIGIL_* variables: the contender gets exactly the
// bench's settings.
func withoutVigilEnv(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "VIGIL_") {
			out = append(out, e)
		}
	}
	return out
}

// machine describes this machine: CPU model and count, memory, OS, Go.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64); err == nil {
					mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	return fmt.Sprintf("%d × %s%s, %s/%s, %s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
