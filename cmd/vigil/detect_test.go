package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
)

// TestReplayCaughtAfterKill9: `vigil run` consumes and commits a refresh
// token's rotation and is killed with SIGKILL; the replay of the rotated
// token arrives while it is down; the restarted process, its detector
// state rebuilt from ClickHouse, raises the theft exactly once.
func TestReplayCaughtAfterKill9(t *testing.T) {
	srv := testenv.ClickHouse(t)
	conn := testenv.Conn(t, srv)
	db := testenv.Database(t)
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 2, "vigil.dlq": 1})
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
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 4, "vigil.dlq": 1})
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
