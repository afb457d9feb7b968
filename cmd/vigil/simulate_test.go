package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/testenv"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
	"github.com/vigilhq/vigil/sim/score"
	"github.com/vigilhq/vigil/sim/truth"
)

// TestSimulateThenScore: `vigil simulate` puts exactly the events it reports
// into Kafka and writes the ground truth; `vigil run` consumes them and its
// stream detectors catch every token theft; `vigil score` reads the truth
// and the anomalies table and prints the scorecard.
func TestSimulateThenScore(t *testing.T) {
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 3, "vigil.dlq": 1, "vigil.actions": 1})
	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	out, _, err := run(t, nil, "simulate", "--brokers", strings.Join(brokers, ","), "--users", "2000", "--rate", "500",
		"--duration", "3m", "--speedup", "0", "--scenario", "token_theft_replay,credential_stuffing", "--seed", "7", "--truth", truthPath,
		"--flat", "--progress", "1ms") // progress reads the simulator while it runs (under -race in CI)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "live sessions") {
		t.Errorf("no progress line in:\n%s", out)
	}
	last := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
	var produced int64
	if _, err := fmtSscanf(last, "produced %d events", &produced); err != nil || produced < 50000 {
		t.Fatalf("simulate output %q: produced %d (%v)", last, produced, err)
	}

	// Count what Kafka holds.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("session-events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got int64
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for got < produced && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(*kgo.Record) { got++ })
	}
	if got != produced {
		t.Fatalf("kafka holds %d messages, simulate reported %d", got, produced)
	}

	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	tf, err := truth.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(tf.Scenarios) != 4 { // 3 thefts, 1 stuffing wave
		t.Fatalf("truth has %d scenario records, want 4: %+v", len(tf.Scenarios), tf.Scenarios)
	}

	srv := testenv.ClickHouse(t)
	db := testenv.Database(t)
	conn := testenv.Conn(t, srv)
	if _, err := chschema.Migrate(context.Background(), conn, db); err != nil {
		t.Fatal(err)
	}
	vigil := startVigil(t, []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
	})
	testenv.WaitFor(t, 2*time.Minute, "vigil run to store every event", func() (bool, string) {
		n := count(t, conn, "SELECT count() FROM "+db+".events")
		return n >= uint64(produced), fmt.Sprintf("%d of %d", n, produced)
	})
	vigil.terminate(t, 30*time.Second) // drains: every anomaly is written
	env := map[string]string{"VIGIL_CLICKHOUSE_ADDR": srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE": db}
	out, _, err = run(t, env, "score", "--truth", truthPath)
	if err != nil {
		t.Fatalf("score: %v\n%s", err, out)
	}
	theft := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "token_theft_replay") {
			theft = line
		}
	}
	if f := strings.Fields(theft); len(f) < 5 || f[4] != "3/3" {
		t.Errorf("token_theft_replay row %q: want 3/3 detected\n%s", theft, out)
	}
	for _, want := range []string{"token_theft_replay", "credential_stuffing", "normal traffic"} {
		if !strings.Contains(out, want) {
			t.Errorf("score output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run(t, env, "score", "--truth", truthPath, "--json")
	var rep score.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
		t.Errorf("score --json: %v\n%s", err, out)
	}
	if fp := rep.NormalTraffic.FalsePositiveAnomalies; fp == nil || *fp != 0 {
		t.Errorf("normal traffic false positives: %v, want 0\n%s", fp, out)
	}
	for _, r := range rep.Rows {
		if r.Scenario == "credential_stuffing" && (r.Detected == nil || *r.Detected != 1 || r.Detector != "login_storm") {
			t.Errorf("credential_stuffing row %+v: want it detected by the window detectors' login_storm", r)
		}
	}

	// The backtest of the same history raises exactly what vigil run raised live.
	var first, newest time.Time
	if err := conn.QueryRow(context.Background(), "SELECT min(time), max(time) FROM "+db+".events").Scan(&first, &newest); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, env, "backtest", "--from", first.Add(-time.Minute).Format(time.RFC3339), "--to", newest.Add(time.Minute).Format(time.RFC3339), "--format", "json")
	var bt struct {
		Anomalies []struct {
			ID       string `json:"id"`
			Detector string `json:"detector"`
			Live     bool   `json:"live"`
		} `json:"anomalies"`
	}
	if err != nil || json.Unmarshal([]byte(out), &bt) != nil {
		t.Fatalf("backtest: %v\n%s", err, out)
	}
	var liveIDs []string
	rows, err := conn.Query(context.Background(), "SELECT DISTINCT id FROM "+db+".anomalies WHERE detector IN ('login_storm', 'session_churn') ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		liveIDs = append(liveIDs, id)
	}
	rows.Close()
	var btIDs []string
	for _, a := range bt.Anomalies {
		btIDs = append(btIDs, a.ID)
		if !a.Live {
			t.Errorf("backtest anomaly %s (%s) was not raised live", a.ID, a.Detector)
		}
	}
	slices.Sort(btIDs)
	if len(liveIDs) == 0 || !slices.Equal(btIDs, liveIDs) {
		t.Errorf("backtest raised %v, vigil run %v", btIDs, liveIDs)
	}
	out, _, err = run(t, env, "backtest", "--from", first.Format(time.RFC3339), "--to", newest.Format(time.RFC3339), "--detector", "session_churn")
	if err != nil || !strings.Contains(out, "0 anomalies would have been raised") {
		t.Errorf("backtest of session_churn only: %v, want nothing raised\n%s", err, out)
	}
	if _, _, err := run(t, env, "backtest", "--to", newest.Format(time.RFC3339)); exitCode(err) != 2 || !strings.Contains(err.Error(), "--from") {
		t.Errorf("backtest without --from: %v, want a usage error naming --from", err)
	}
	out, _, err = run(t, nil, "simulate", "--brokers", strings.Join(brokers, ","), "--topic", "no-such-topic", "--duration", "1s", "--speedup", "0")
	if err == nil || !strings.Contains(err.Error(), `"no-such-topic" (--topic)`) {
		t.Errorf("simulate to a missing topic: %v, want an error naming --topic\n%s", err, out)
	}
	empty := filepath.Join(dir, "token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, nil, "simulate", "--brokers", strings.Join(brokers, ","), "--duration", "1s", "--speedup", "0",
		"--api-listen", "127.0.0.1:0", "--api-token-file", empty)
	if err == nil || !strings.Contains(err.Error(), "--api-token-file") || !strings.Contains(err.Error(), "empty") {
		t.Errorf("simulate with an empty token file: %v, want an error naming --api-token-file (an empty token must not turn auth off)\n%s", err, out)
	}
	if _, _, err := run(t, env, "score"); exitCode(err) != 2 {
		t.Errorf("score without --truth: %v, want a usage error", err)
	}
}

// TestDemo runs a short demo against the shared ClickHouse: everything it
// produced is stored exactly once and it prints the scorecard.
func TestDemo(t *testing.T) {
	srv := testenv.ClickHouse(t)
	report := t.TempDir()
	out, _, err := run(t, nil, "demo", "--clickhouse", srv.Addr(), "--duration", "6s", "--rate", "3000", "--users", "2000", "--admin", "127.0.0.1:0", "--report", report)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"ok: every message is in ClickHouse exactly once", "scorecard", "token_theft_replay", "credential_stuffing", "reconnect_storm",
		"SLOs over the run", "validation-success", "incident report (vigil incident --from"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	checkDemoReport(t, report)
}

// checkDemoReport: the demo wrote the incident report over its run, in
// Markdown and in HTML with its charts.
func checkDemoReport(t *testing.T, dir string) {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(dir, "incident.md"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "incident.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Incident report", "## What vigil found", "Session hijack", "revoke_session"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("incident.md lacks %q", want)
		}
	}
	if n := strings.Count(string(page), "<svg"); n != 3 {
		t.Errorf("incident.html has %d charts, want 3", n)
	}
}

func fmtSscanf(s, format string, n *int64) (int, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, os.ErrInvalid
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	*n = v
	return 1, err
}
