package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/sim"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// run calls Run in-process with env vars from envs only.
func run(t *testing.T, envs map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	getenv := func(k string) (string, bool) { v, ok := envs[k]; return v, ok }
	err = runWithEnv(context.Background(), args, &cmdEnv{stdin: strings.NewReader(""), stdout: &o, stderr: &e, getenv: getenv})
	return o.String(), e.String(), err
}

func TestHelpListsCommands(t *testing.T) {
	out, _, err := run(t, nil, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"run", "migrate", "demo", "config", "version", "simulate", "score", "rules", "slo", "backtest", "revoke", "dashboards", "timeline", "incident", "query", "pseudonym", "bench"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("--help does not list %q:\n%s", c, out)
		}
	}
	_, _, err = run(t, nil, "frobnicate")
	if exitCode(err) != 2 {
		t.Errorf("unknown command: exit %d (%v), want 2", exitCode(err), err)
	}
	for _, c := range []string{"run", "migrate", "demo", "version", "simulate", "score", "rules", "slo", "backtest", "revoke", "dashboards", "timeline", "incident", "query"} {
		out, _, err := run(t, nil, c, "--help")
		if err != nil || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: err %v, output lacks examples:\n%s", c, err, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "vigil ") {
		t.Fatalf("version: %q, %v", out, err)
	}
}

// TestConfigCheck is acceptance 5 at the CLI: good files pass, bad and
// misspelled ones exit non-zero naming the key and line.
func TestConfigCheck(t *testing.T) {
	dir := "../../internal/config/testdata/"
	f := func(file string, env map[string]string, wantOK bool, want ...string) {
		t.Helper()
		out, _, err := run(t, env, "config", "check", "--config", dir+file)
		if wantOK {
			if err != nil || !strings.Contains(out, ": ok") {
				t.Errorf("%s: got %v / %q, want ok", file, err, out)
			}
			return
		}
		if err == nil || exitCode(err) == 0 {
			t.Errorf("%s: passed, want a non-zero exit", file)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not mention %q:\n%v", file, w, err)
			}
		}
	}
	f("../../../deploy/vigil.yaml", nil, true)
	f("good.yaml", nil, true)
	f("minimal.yaml", nil, true)
	f("empty.yaml", nil, true)
	f("misspelled.yaml", nil, false, `misspelled.yaml:6: unknown key "kafka.brokrs" (did you mean "kafka.brokers"?)`, `"clickhouse.adr"`)
	f("bad_values.yaml", nil, false, "kafka.brokers[1]")
	f("minimal.yaml", map[string]string{"VIGIL_INGEST_BATCH_SIZE": "lots"}, false, "VIGIL_INGEST_BATCH_SIZE", "ingest.batch_size")
	out, _, err := run(t, map[string]string{"VIGIL_KAFKA_BROKERS": "k1:9092,k2:9092"}, "config", "check", "--config", dir+"minimal.yaml", "--print")
	if err != nil || !strings.Contains(out, "k2:9092") {
		t.Errorf("--print with env override: %v\n%s", err, out)
	}
}

// build compiles the vigil binary once per test run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vigil-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vigil")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is a `vigil run` child process.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan error
	admin  string
	exited bool
}

func startVigil(t *testing.T, env []string) *proc {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := l.Addr().String()
	l.Close()
	p := &proc{out: &syncBuffer{}, done: make(chan error, 1), admin: admin}
	p.cmd = exec.Command(bin, "run")
	p.cmd.Env = append(append(os.Environ(), env...), "VIGIL_ADMIN_LISTEN="+admin)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.exited {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("vigil output:\n%s", p.out.String())
		}
	})
	return p
}

// terminate sends SIGTERM and requires exit status 0 within timeout.
func (p *proc) terminate(t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.exited = true
		if err != nil {
			t.Errorf("vigil run after SIGTERM: %v\n%s", err, p.out.String())
		}
	case <-time.After(timeout):
		t.Fatalf("vigil run did not exit within %s of SIGTERM", timeout)
	}
}

func (p *proc) get(path string) (int, string) {
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func count(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		return 0 // table may not exist yet
	}
	return n
}

// TestKill9MidStream is acceptance 2: `kill -9` of `vigil run` in the middle
// of the stream and a restart leave exactly 100,000 distinct events after
// dedup and every invalid message dead-lettered; admin endpoints report it.
func TestKill9MidStream(t *testing.T) {
	srv := testenv.ClickHouse(t)
	conn := testenv.Conn(t, srv)
	db := testenv.Database(t)
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 4, "vigil.dlq": 1, "vigil.actions": 1})

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("session-events"), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s := sim.NewStream(sim.StreamConfig{Seed: 2, Users: 5000, InvalidEvery: 101})
	recs := make([]*kgo.Record, 0, 101_000)
	for range 101_000 {
		m := s.Next()
		recs = append(recs, &kgo.Record{Key: m.Key, Value: m.Value})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	env := []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
		"VIGIL_INGEST_BATCH_SIZE=500",
		"VIGIL_INGEST_LAG_INTERVAL=200ms",
		"VIGIL_KAFKA_SESSION_TIMEOUT=6s",
		"VIGIL_INGEST_DRAIN_TIMEOUT=3s",
		"VIGIL_KAFKA_HEARTBEAT_INTERVAL=500ms",
	}
	events := "SELECT count() FROM " + db + ".events"
	first := startVigil(t, env)
	testenv.WaitFor(t, 2*time.Minute, "the first process to store some events", func() (bool, string) {
		n := count(t, conn, events)
		return n >= 5_000, fmt.Sprintf("%d rows", n)
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.exited = true
	atKill := count(t, conn, events)
	if atKill >= 100_000 {
		t.Fatalf("the process stored all %d events before it was killed; the test proves nothing", atKill)
	}
	t.Logf("killed with %d rows stored", atKill)

	second := startVigil(t, env)
	testenv.WaitFor(t, 2*time.Minute, "all events after restart", func() (bool, string) {
		n := count(t, conn, "SELECT uniqExact(id) FROM "+db+".events")
		d := count(t, conn, "SELECT count() FROM "+db+".dead_letters FINAL")
		return n == 100_000 && d == 1_000, fmt.Sprintf("%d distinct events, %d dead letters", n, d)
	})
	if n := count(t, conn, "SELECT count() FROM "+db+".events FINAL"); n != 100_000 {
		t.Errorf("events after dedup: %d, want 100000", n)
	}
	if n := count(t, conn, "SELECT count() FROM (SELECT id FROM "+db+".events GROUP BY id)"); n != 100_000 {
		t.Errorf("events grouped by id: %d, want 100000", n)
	}

	// Every rejection reason is there, and the DLQ topic holds every rejected
	// message (at least once: a replay may repeat some).
	rows, err := conn.Query(context.Background(), "SELECT reason, count() FROM (SELECT * FROM "+db+".dead_letters FINAL) GROUP BY reason")
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]uint64{}
	for rows.Next() {
		var r string
		var n uint64
		if err := rows.Scan(&r, &n); err != nil {
			t.Fatal(err)
		}
		reasons[r] = n
	}
	rows.Close()
	for _, r := range sim.InvalidReasons {
		if reasons[string(r)] == 0 {
			t.Errorf("no dead letter with reason %s after the restart: %v", r, reasons)
		}
	}
	dlq, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("vigil.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	positions := map[string]bool{}
	pollCtx, cancelPoll := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelPoll()
	for len(positions) < 1_000 && pollCtx.Err() == nil {
		dlq.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			positions[h["vigil-partition"]+"/"+h["vigil-offset"]] = true
		})
	}
	if len(positions) != 1_000 {
		t.Errorf("vigil.dlq holds %d distinct rejected messages, want 1000", len(positions))
	}
	t.Logf("raw events rows after restart: %d (above 100000 means the replay re-inserted rows that dedup collapsed)", count(t, conn, events))

	testenv.WaitFor(t, 30*time.Second, "/readyz 200 and lag 0 in /metrics", func() (bool, string) {
		code, body := second.get("/readyz")
		_, metrics := second.get("/metrics")
		return code == 200 && strings.Contains(metrics, `vigil_ingest_lag_messages{partition="0",topic="session-events"} 0`), fmt.Sprintf("readyz %d %q", code, body)
	})
	_, metrics := second.get("/metrics")
	for _, want := range []string{
		`vigil_ingest_events_total{type="session.validated"}`,
		`vigil_ingest_invalid_total{reason="too_large"}`,
		`vigil_ingest_insert_duration_seconds_bucket`,
		`vigil_ingest_commit_duration_seconds_bucket`,
		`vigil_ingest_lag_seconds`,
		`vigil_ingest_buffer_fill_ratio`,
		`vigil_ingest_retries_total{op="insert_events"}`,
		`vigil_retention_errors_total 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := second.get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := second.get("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/: %d, want 404 (the profiler is off unless admin.pprof)", code)
	}
	checkMetricLabels(t, metrics)

	// SIGTERM drains and exits 0.
	second.terminate(t, time.Minute)
	if !strings.Contains(second.out.String(), "vigil stopped") {
		t.Errorf("no clean stop in the log:\n%s", second.out.String())
	}
}

// TestMigrateCommand: `vigil migrate` twice at once, then --status.
func TestMigrateCommand(t *testing.T) {
	srv := testenv.ClickHouse(t)
	db := testenv.Database(t)
	env := map[string]string{"VIGIL_CLICKHOUSE_ADDR": srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE": db}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, _, errs[i] = run(t, env, "migrate") })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := run(t, env, "migrate", "--status")
	if err != nil || !strings.Contains(out, "0 pending") {
		t.Errorf("migrate --status: %v %q", err, out)
	}
}

// TestNotReadyUntilClickHouse: with ClickHouse unreachable, `vigil run`
// keeps retrying, /readyz says why, and SIGTERM still exits cleanly.
func TestNotReadyUntilClickHouse(t *testing.T) {
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 1, "vigil.dlq": 1, "vigil.actions": 1})
	p := startVigil(t, []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=127.0.0.1:1",
		"VIGIL_CLICKHOUSE_DIAL_TIMEOUT=200ms",
	})
	for i := 0; i < 3; i++ { // several probes while start-up retries
		testenv.WaitFor(t, 30*time.Second, "/readyz 503 naming the schema check", func() (bool, string) {
			code, body := p.get("/readyz")
			return code == 503 && strings.Contains(body, "clickhouse schema"), fmt.Sprintf("%d %q", code, body)
		})
	}
	if code, _ := p.get("/healthz"); code != 200 {
		t.Errorf("/healthz while waiting: %d", code)
	}
	p.terminate(t, 30*time.Second)
}

// TestRunNoMigrateFailsOnPending: --no-migrate against an unmigrated
// database exits non-zero naming the pending migrations.
func TestRunNoMigrateFailsOnPending(t *testing.T) {
	srv := testenv.ClickHouse(t)
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 1, "vigil.dlq": 1, "vigil.actions": 1})
	stdout, stderr, err := run(t, map[string]string{
		"VIGIL_KAFKA_BROKERS":       strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR":     srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE": testenv.Database(t),
		"VIGIL_ADMIN_LISTEN":        "",
	}, "run", "--no-migrate")
	if err == nil || !strings.Contains(err.Error(), "pending migrations") {
		t.Fatalf("got %v (stdout %q stderr %q), want an error about pending migrations", err, stdout, stderr)
	}
}
