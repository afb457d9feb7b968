package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/score"
	"github.com/vigilhq/vigil/sim/truth"
)

// TestReplayCaughtAfterKill9: `vigil run` consumes and commits a refresh
// token's rotation and is killed with SIGKILL; the replay of the rotated
// token arrives while it is down; the restarted process, its detector
// state rebuilt from ClickHouse, raises the theft exactly once.
func TestReplayCaughtAfterKill9(t *testing.T) {
	srv := testenv.ClickHouse(t)
	conn := testenv.Conn(t, srv)
	db := testenv.Database(t)
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 2, "vigil.dlq": 1, "vigil.actions": 1})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("session-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(evs ...schemas.Event) {
		t.Helper()
		var recs []*kgo.Record
		for i := range evs {
			recs = append(recs, &kgo.Record{Key: []byte(evs[i].FamilyID), Value: schemas.AppendJSON(nil, &evs[i])})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	created, rotation, replay := testenv.TokenTheft(time.Now().UTC().Add(-time.Minute))

	env := []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
		"VIGIL_INGEST_FLUSH_INTERVAL=50ms",
		"VIGIL_INGEST_LAG_INTERVAL=200ms",
		"VIGIL_KAFKA_SESSION_TIMEOUT=6s",
		"VIGIL_INGEST_DRAIN_TIMEOUT=3s",
		"VIGIL_KAFKA_HEARTBEAT_INTERVAL=500ms",
	}
	produce(created, rotation)
	first := startVigil(t, env)
	testenv.WaitFor(t, time.Minute, "the rotation stored and its offset committed", func() (bool, string) {
		_, body := first.get("/metrics")
		n := count(t, conn, "SELECT count() FROM "+db+".events")
		c := metricSum(body, "vigil_ingest_commits_total")
		return n == 2 && c >= 1, fmt.Sprintf("%d events, %g commits", n, c)
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.exited = true

	produce(replay)
	second := startVigil(t, env)
	testenv.WaitFor(t, time.Minute, "the replay raised", func() (bool, string) {
		n := count(t, conn, "SELECT count() FROM "+db+".anomalies")
		return n >= 1, fmt.Sprintf("%d anomalies", n)
	})
	testenv.WaitFor(t, 30*time.Second, "the replay's offset committed", func() (bool, string) {
		_, body := second.get("/metrics")
		a := metricSum(body, `vigil_anomalies_total{detector="token_reuse",kind="replay_other_client",severity="critical",shadow="false"}`)
		c := metricSum(body, "vigil_ingest_commits_total")
		return a >= 1 && c >= 1, fmt.Sprintf("%g anomalies, %g commits", a, c)
	})
	second.terminate(t, 30*time.Second)
	if n := count(t, conn, "SELECT count() FROM "+db+".anomalies FINAL"); n != 1 {
		t.Errorf("anomalies after dedup = %d, want 1", n)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".anomalies WHERE detector = 'token_reuse' AND kind = 'replay_other_client' AND family_id = 'f1'"); n == 0 {
		t.Error("no token_reuse replay_other_client anomaly for family f1")
	}
}

// metricSum adds up the samples of the exposition lines that start with
// series (a metric name, or a name with its labels).
func metricSum(body, series string) float64 {
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, series)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := strings.LastIndexByte(rest, ' '); i >= 0 {
			var v float64
			if _, err := fmt.Sscan(rest[i+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// TestWindowsRunInOneProcess checks that of two `vigil run` processes in
// one consumer group only the owner of partition 0 runs the window
// detectors, and that the survivor takes them over when it leaves.
func TestWindowsRunInOneProcess(t *testing.T) {
	srv := testenv.ClickHouse(t)
	db := testenv.Database(t)
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 4, "vigil.dlq": 1, "vigil.actions": 1})
	env := []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
		"VIGIL_KAFKA_SESSION_TIMEOUT=6s",
		"VIGIL_KAFKA_HEARTBEAT_INTERVAL=500ms",
		"VIGIL_INGEST_DRAIN_TIMEOUT=3s",
	}
	a := startVigil(t, env)
	testenv.WaitFor(t, time.Minute, "the first process to own every partition", func() (bool, string) {
		_, body := a.get("/metrics")
		return metricSum(body, "vigil_ingest_partitions_assigned") == 4, body[:0]
	})
	b := startVigil(t, env)
	state := func() (assignedA, assignedB, activeA, activeB float64) {
		_, ba := a.get("/metrics")
		_, bb := b.get("/metrics")
		return metricSum(ba, "vigil_ingest_partitions_assigned"), metricSum(bb, "vigil_ingest_partitions_assigned"),
			metricSum(ba, "vigil_detect_window_active"), metricSum(bb, "vigil_detect_window_active")
	}
	testenv.WaitFor(t, time.Minute, "both processes to share the partitions, one running the window detectors", func() (bool, string) {
		pa, pb, wa, wb := state()
		return pa > 0 && pb > 0 && pa+pb == 4 && wa+wb == 1, fmt.Sprintf("partitions %g+%g, window detectors active %g+%g", pa, pb, wa, wb)
	})
	active, other := a, b
	if _, _, wa, _ := state(); wa == 0 {
		active, other = b, a
	}
	active.terminate(t, 30*time.Second)
	testenv.WaitFor(t, time.Minute, "the survivor to own every partition and run the window detectors", func() (bool, string) {
		_, body := other.get("/metrics")
		p, w := metricSum(body, "vigil_ingest_partitions_assigned"), metricSum(body, "vigil_detect_window_active")
		return p == 4 && w == 1, fmt.Sprintf("partitions %g, window detectors active %g", p, w)
	})
	other.terminate(t, 30*time.Second)
}

// TestWindowDetectorsUnderSpeedup is the window detectors' acceptance run
// end to end: `vigil simulate --speedup` plays the five attacks and
// incidents they cover and three look-alikes into Kafka while `vigil run`
// consumes; `vigil score` finds every instance and no false positive, and
// `vigil backtest` raises exactly the anomalies vigil run raised.
func TestWindowDetectorsUnderSpeedup(t *testing.T) {
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 4, "vigil.dlq": 1, "vigil.actions": 1})
	srv := testenv.ClickHouse(t)
	db := testenv.Database(t)
	conn := testenv.Conn(t, srv)
	vigil := startVigil(t, []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
	})
	truthPath := filepath.Join(t.TempDir(), "truth.jsonl")
	out, _, err := run(t, nil, "simulate", "--brokers", strings.Join(brokers, ","), "--users", "3000", "--tenants", "3", "--rate", "200",
		"--duration", "24m", "--speedup", "40", "--flat", "--seed", "5", "--truth", truthPath, "--scenario",
		"credential_stuffing,password_spraying,brute_force,reconnect_storm,key_rotation_churn,corporate_nat,flash_sale,monday_morning")
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	var produced int64
	last := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
	if _, err := fmtSscanf(last, "produced %d events", &produced); err != nil {
		t.Fatalf("simulate output %q: %v", last, err)
	}
	testenv.WaitFor(t, 2*time.Minute, "vigil run to store every event", func() (bool, string) {
		n := count(t, conn, "SELECT count() FROM "+db+".events")
		return n >= uint64(produced), fmt.Sprintf("%d of %d", n, produced)
	})
	vigil.terminate(t, 30*time.Second) // its last round judges the windows complete by then
	env := map[string]string{"VIGIL_CLICKHOUSE_ADDR": srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE": db}
	out, _, err = run(t, env, "score", "--truth", truthPath, "--json")
	var rep score.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("score --json: %v\n%s", err, out)
	}
	table, _, _ := run(t, env, "score", "--truth", truthPath)
	t.Logf("scorecard:\n%s", table)
	for _, r := range rep.Rows {
		switch {
		case r.Class == truth.ClassBenign:
			if *r.FalsePositiveAnomalies != 0 {
				t.Errorf("%s: %d false positives", r.Scenario, *r.FalsePositiveAnomalies)
			}
		case r.Instances == 0 || r.Detected == nil || *r.Detected != r.Instances:
			t.Errorf("%s/%s: detected %d of %d", r.Scenario, r.Detector, deref(r.Detected), r.Instances)
		}
	}
	if fp := rep.NormalTraffic.FalsePositiveAnomalies; fp == nil || *fp != 0 {
		t.Errorf("normal traffic: %d false positives", deref(fp))
	}
	if t.Failed() {
		f, _ := os.ReadFile(truthPath)
		t.Logf("truth:\n%s", f)
		rows, err := conn.Query(context.Background(), "SELECT detector, kind, tenant, user_id, ip, first_event_time, window_end, evidence FROM "+db+".anomalies FINAL ORDER BY window_end")
		if err == nil {
			for rows.Next() {
				var det, kind, ten, user, ip, ev string
				var fe, we time.Time
				_ = rows.Scan(&det, &kind, &ten, &user, &ip, &fe, &we, &ev)
				t.Logf("anomaly %s/%s %s user=%s ip=%s first=%s end=%s %s", det, kind, ten, user, ip, fe.Format(time.TimeOnly), we.Format(time.TimeOnly), ev)
			}
			rows.Close()
		}
	}
	var first time.Time
	if err := conn.QueryRow(context.Background(), "SELECT min(time) FROM "+db+".events").Scan(&first); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, env, "backtest", "--from", first.Add(-time.Minute).Format(time.RFC3339), "--format", "json")
	var bt struct {
		Anomalies []struct {
			ID   string `json:"id"`
			Live bool   `json:"live"`
		} `json:"anomalies"`
	}
	if err != nil || json.Unmarshal([]byte(out), &bt) != nil {
		t.Fatalf("backtest: %v\n%s", err, out)
	}
	stored := count(t, conn, "SELECT uniqExact(id) FROM "+db+".anomalies WHERE detector IN ('login_storm', 'session_churn')")
	for _, a := range bt.Anomalies {
		if !a.Live {
			t.Errorf("backtest raised %s, vigil run did not", a.ID)
		}
	}
	if stored == 0 || uint64(len(bt.Anomalies)) != stored {
		t.Errorf("backtest raised %d anomalies, vigil run %d", len(bt.Anomalies), stored)
	}
	checkIncident(t, env, conn, db, "Credential-stuffing wave starts", "Password spraying starts", "Brute force on one account starts",
		"Reconnect storm (logins surging after an outage) starts")
}

func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}
