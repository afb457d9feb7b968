package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/slo"
)

// TestSLOReport: `vigil slo report` reads the configured database and
// prints the exact figures as JSON, a table or Markdown; bad flags are
// usage errors that say what is wrong.
func TestSLOReport(t *testing.T) {
	srv, conn, db := testenv.MigratedDatabase(t)
	ctx := context.Background()
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var cols ingest.EventColumns
	for i := range 1000 {
		e := schemas.Event{ID: fmt.Sprint("v", i), Type: schemas.TypeSessionValidated, Time: t0.Add(time.Duration(i) * time.Minute),
			UserID: "u", SessionID: "s", FamilyID: "s", Outcome: schemas.OutcomeSuccess, SampleRate: 1}
		if i%250 == 0 {
			e.Outcome, e.Reason = schemas.OutcomeFailure, "internal_error"
		}
		cols.Append(&e, 0, int64(i))
	}
	if err := ingest.NewClickHouseSink(conn, db).WriteEvents(ctx, &cols); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VIGIL_CLICKHOUSE_ADDR": srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE": db}
	out, _, err := run(t, env, "slo", "report", "--slo", "validation-success", "--from", "2026-10-01T00:00:00Z", "--to", "2026-10-02T00:00:00Z", "--format", "json")
	if err != nil {
		t.Fatalf("slo report: %v\n%s", err, out)
	}
	var rep slo.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.SLOs) != 1 || rep.SLOs[0].Good != 996 || rep.SLOs[0].Bad != 4 || rep.SLOs[0].SLI == nil || *rep.SLOs[0].SLI != 99.6 {
		t.Errorf("report = %+v, want validation-success 996 good, 4 bad, SLI 99.6", rep.SLOs)
	}
	out, _, err = run(t, env, "slo", "report", "--month", "2026-10", "--tz", "Europe/Berlin", "--format", "md")
	if err != nil || !strings.Contains(out, "| validation-success | ratio | 99.9% |") || !strings.Contains(out, "2026-09-30T22:00:00Z → 2026-10-31T23:00:00Z") {
		t.Errorf("slo report --month in Europe/Berlin as Markdown: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, "--format must be table, json or md"},
		{[]string{"--slo", "nope"}, `no SLO named "nope"`},
		{[]string{"--month", "October"}, "--month: want YYYY-MM"},
		{[]string{"--from", "2026-10-02T00:00:00Z", "--to", "2026-10-01T00:00:00Z"}, "--from must be before --to"},
		{[]string{"--from", "2099-01-01T00:00:00Z"}, "--from must be before --to (default now)"},
		{[]string{"--tz", "Europe/Berlin"}, "--tz applies to --month only"},
		{[]string{"--exclude", "2026-10-02T00:00:00Z"}, "want T1/T2"},
	} {
		_, stderr, err := run(t, env, append([]string{"slo", "report"}, c.args...)...)
		if exitCode(err) != 2 || !strings.Contains(err.Error()+stderr, c.want) {
			t.Errorf("slo report %v: %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
}
