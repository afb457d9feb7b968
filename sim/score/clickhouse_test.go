package score_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/internal/golden"
	"github.com/vigilhq/vigil/internal/testenv"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
	"github.com/vigilhq/vigil/sim/score"
	"github.com/vigilhq/vigil/sim/truth"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func readTruth(t *testing.T) truth.File {
	t.Helper()
	fh, err := os.Open(filepath.Join("testdata", "truth.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := truth.Read(fh)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAnomalies(t *testing.T) []score.Anomaly {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "anomalies.json"))
	if err != nil {
		t.Fatal(err)
	}
	var as []score.Anomaly
	if err := json.Unmarshal(b, &as); err != nil {
		t.Fatalf("testdata/anomalies.json: %v", err)
	}
	return as
}

// nanos is t as the table's *_ns column; whole-second times are stored with
// 0, as a writer without nanoseconds would, to exercise the fallback to the
// DateTime column.
func nanos(t time.Time) int64 {
	if t.Nanosecond() == 0 {
		return 0
	}
	return t.UnixNano()
}

// insertAnomalies writes as to db.anomalies in one batch.
func insertAnomalies(t *testing.T, ctx context.Context, conn driver.Conn, db string, as []score.Anomaly) {
	t.Helper()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".anomalies (id, detector, kind, severity, shadow, tenant, user_id, session_id, family_id, ip, evidence, "+
		"first_event_time, first_event_time_ns, detected_at, detected_at_ns, window_start, window_end)")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		var shadow uint8
		if a.Shadow {
			shadow = 1
		}
		if err := b.Append(a.ID, a.Detector, a.Kind, a.Severity, shadow, a.Tenant, a.UserID, a.SessionID, a.FamilyID, a.IP, a.Evidence,
			a.FirstEventTime, nanos(a.FirstEventTime), a.DetectedAt, nanos(a.DetectedAt), a.WindowStart, a.WindowEnd); err != nil {
			_ = b.Abort()
			t.Fatalf("append anomaly %s: %v", a.ID, err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestComputeGolden scores the hand-written truth file against the fixture
// anomalies stored in a real ClickHouse and compares both renderings with
// the golden files.
func TestComputeGolden(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := testenv.Conn(t, testenv.ClickHouse(t))
	db := testenv.Database(t)
	if _, err := chschema.Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	as := readAnomalies(t)
	insertAnomalies(t, ctx, conn, db, as)
	// A replayed anomaly lands in another part; FINAL collapses it.
	insertAnomalies(t, ctx, conn, db, as[:1])

	loaded, ok, err := score.LoadAnomalies(ctx, conn, db)
	if err != nil || !ok {
		t.Fatalf("LoadAnomalies: exists %v, err %v", ok, err)
	}
	want := slices.Clone(as)
	slices.SortFunc(want, func(a, b score.Anomaly) int {
		return strings.Compare(a.Detector+"\x00"+a.ID, b.Detector+"\x00"+b.ID)
	})
	if len(loaded) != len(want) {
		t.Fatalf("loaded %d anomalies, want %d (FINAL should collapse the replay)", len(loaded), len(want))
	}
	for i := range want {
		if !anomaliesEqual(loaded[i], want[i]) {
			t.Errorf("anomaly %d read back as\n%+v\nwant\n%+v", i, loaded[i], want[i])
		}
	}

	r, err := score.Compute(ctx, conn, readTruth(t), score.Options{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	if !r.DetectionScored {
		t.Fatalf("detection not scored: %q", r.Notes)
	}
	var table, js bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "score.golden.txt"), table.Bytes())
	golden.Check(t, filepath.Join("testdata", "score.golden.json"), js.Bytes())
}

func anomaliesEqual(a, b score.Anomaly) bool {
	times := func(a score.Anomaly) []time.Time {
		return []time.Time{a.FirstEventTime, a.DetectedAt, a.WindowStart, a.WindowEnd}
	}
	ta, tb := times(a), times(b)
	for i := range ta {
		if !ta[i].Equal(tb[i]) {
			return false
		}
	}
	a.FirstEventTime, a.DetectedAt, a.WindowStart, a.WindowEnd = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	b.FirstEventTime, b.DetectedAt, b.WindowStart, b.WindowEnd = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

// TestComputeWithoutAnomaliesTable: a database without the anomalies table
// still scores revocations, says detection was not scored, and renders n/a.
func TestComputeWithoutAnomaliesTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := testenv.Conn(t, testenv.ClickHouse(t))
	db := testenv.Database(t)
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	_, ok, err := score.LoadAnomalies(ctx, conn, db)
	if err != nil || ok {
		t.Fatalf("LoadAnomalies: exists %v, err %v; want false, nil", ok, err)
	}
	r, err := score.Compute(ctx, conn, readTruth(t), score.Options{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	note := "no anomalies table in " + db + ": detection not scored"
	if r.DetectionScored || !slices.Contains(r.Notes, note) {
		t.Errorf("scored %v, notes %q; want not scored and %q", r.DetectionScored, r.Notes, note)
	}
	for _, row := range r.Rows {
		if row.Detected != nil || row.TimeToDetect != nil || row.FalsePositiveAnomalies != nil {
			t.Errorf("row %s/%s scores detection without anomalies: %+v", row.Scenario, row.Detector, row)
		}
	}
	if r.Totals.Revocations != 5 || r.Totals.Revoked != 3 || r.Totals.FalsePositiveRevocations != 2 {
		t.Errorf("revocations still scored? totals %+v", r.Totals)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	out := table.String()
	if !strings.Contains(out, "note: "+note) {
		t.Errorf("table lacks the note:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "token_theft_replay ") && !strings.Contains(line, " n/a ") {
			t.Errorf("detection column is not n/a: %q", line)
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"detected": null`) || !strings.Contains(js.String(), `"detection_scored": false`) {
		t.Errorf("json does not carry null detection:\n%s", js.String())
	}
}

// TestLoadAnomaliesRejectsBadDatabaseName: the name is spliced into SQL, so
// only identifiers are accepted.
func TestLoadAnomaliesRejectsBadDatabaseName(t *testing.T) {
	conn := testenv.Conn(t, testenv.ClickHouse(t))
	_, _, err := score.LoadAnomalies(context.Background(), conn, "vigil; DROP TABLE x")
	if err == nil || !strings.Contains(err.Error(), "bad database name") {
		t.Fatalf("got %v, want bad database name", err)
	}
}
