package slo_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/slo"
)

// TestReportExact is issue 7's acceptance 2: on a fixture with known good
// and bad counts, the report's SLI, burn rates, budget, worst hours and
// latency figures are the hand-computed ones, and an excluded maintenance
// window is taken out of all of them.
func TestReportExact(t *testing.T) {
	_, conn, db := testenv.MigratedDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var cols ingest.EventColumns
	n := 0
	add := func(typ schemas.Type, at time.Duration, outcome schemas.Outcome, reason string, latency float64, rate float64) {
		n++
		e := schemas.Event{ID: fmt.Sprint("e", n), Type: typ, Time: t0.Add(at), UserID: "u", SessionID: "s", FamilyID: "s",
			Outcome: outcome, Reason: reason, SampleRate: rate, LatencyMS: latency, HasLatency: latency >= 0}
		cols.Append(&e, 0, int64(n))
	}
	for h := range 10 {
		for i := range 900 { // 900 good validations an hour
			add(schemas.TypeSessionValidated, time.Duration(h)*time.Hour+time.Duration(i)*4*time.Second, schemas.OutcomeSuccess, "", 2, 1)
		}
	}
	for i := range 100 { // refusals of revoked sessions: correct answers
		add(schemas.TypeSessionValidated, 5*time.Hour+time.Duration(i)*30*time.Second, schemas.OutcomeFailure, "revoked", 2, 1)
	}
	for i := range 10 { // a store outage in the last hour
		add(schemas.TypeSessionValidated, 9*time.Hour+time.Duration(i)*time.Minute, schemas.OutcomeFailure, "store_unavailable", 40, 1)
	}
	for i := range 5 {
		add(schemas.TypeSessionValidated, 3*time.Hour+time.Duration(i)*time.Minute, schemas.OutcomeFailure, "internal_error", 2, 1)
	}
	add(schemas.TypeSessionValidated, 90*time.Minute, schemas.OutcomeSuccess, "", 2, 10) // sampled 1 in 10
	for i, l := range []float64{100, 150, 200, 250, 300} {
		add(schemas.TypeTokenRefreshed, 2*time.Hour+time.Duration(i)*time.Minute, schemas.OutcomeNone, "", l, 1)
	}
	// Revocations: fa used 3 s after (inside 5 s), fb used 10 s after (not
	// enforced), fc never used again.
	for i, f := range []struct {
		fam  string
		at   time.Duration
		used time.Duration
	}{{"fa", time.Hour, 3 * time.Second}, {"fb", 2 * time.Hour, 10 * time.Second}, {"fc", 4 * time.Hour, -1}} {
		n++
		e := schemas.Event{ID: fmt.Sprint("r", i), Type: schemas.TypeSessionRevoked, Time: t0.Add(f.at), UserID: "u", SessionID: f.fam,
			FamilyID: f.fam, Actor: schemas.ActorAdmin, Reason: "privilege_change", SampleRate: 1}
		cols.Append(&e, 0, int64(n))
		if f.used >= 0 {
			n++
			u := schemas.Event{ID: fmt.Sprint("u", i), Type: schemas.TypeTokenRefreshed, Time: t0.Add(f.at + f.used), UserID: "u",
				SessionID: f.fam, FamilyID: f.fam, ParentTokenID: "p", TokenID: "t", SampleRate: 1}
			cols.Append(&u, 0, int64(n))
		}
	}
	sink := ingest.NewClickHouseSink(conn, db)
	for range 2 { // a replayed batch: FINAL counts each event once
		if err := sink.WriteEvents(ctx, &cols); err != nil {
			t.Fatal(err)
		}
	}
	specs := slo.Defaults()
	var validation, latency, enforcement slo.Spec
	for _, s := range specs {
		switch s.Name {
		case "validation-success":
			validation = s
		case "issuance-latency":
			latency = s
		case "revocation-enforcement":
			enforcement = s
		}
	}
	to := t0.Add(10 * time.Hour)
	rep, err := slo.BuildReport(ctx, conn, []slo.Spec{validation, latency, enforcement}, slo.ReportOptions{Database: db, From: t0, To: to, Thresholds: []float64{150}})
	if err != nil {
		t.Fatal(err)
	}
	v := rep.SLOs[0]
	eq := func(what string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", what, deref(got), want)
		}
	}
	if v.Good != 9110 || v.Bad != 15 {
		t.Errorf("validation good/bad = %g/%g, want 9110/15", v.Good, v.Bad)
	}
	eq("SLI", v.SLI, 100*9110.0/9125)
	eq("burn rate", v.BurnRate, 15.0/9125/0.001)
	eq("budget remaining", v.BudgetRemaining, 1-15.0/9125/0.001)
	w := map[string]slo.WindowBurn{}
	for _, x := range v.Windows {
		w[x.Window] = x
	}
	if x := w["1h"]; x.Good != 900 || x.Bad != 10 {
		t.Errorf("1h window good/bad = %g/%g, want 900/10", x.Good, x.Bad)
	} else {
		eq("1h burn", x.BurnRate, 10.0/910/0.001)
	}
	if x := w["5m"]; x.Good != 75 || x.Bad != 0 {
		t.Errorf("5m window good/bad = %g/%g, want 75/0", x.Good, x.Bad)
	}
	if len(v.Worst) != 2 || !v.Worst[0].Start.Equal(t0.Add(9*time.Hour)) || v.Worst[0].Bad != 10 || v.Worst[0].Good != 900 ||
		!v.Worst[1].Start.Equal(t0.Add(3*time.Hour)) || v.Worst[1].Bad != 5 {
		t.Errorf("worst hours = %+v, want 09:00 (10 bad of 910) then 03:00 (5 bad)", v.Worst)
	}
	l := rep.SLOs[1]
	if l.Good != 3 || l.Bad != 2 || l.Percentiles["p50"] != 200 || l.Percentiles["p99"] != 300 {
		t.Errorf("latency good/bad %g/%g, percentiles %v; want 3/2, p50 200, p99 300", l.Good, l.Bad, l.Percentiles)
	}
	if len(l.Shares) != 2 || l.Shares[0].Share != 0.6 || l.Shares[1].ThresholdMS != 150 || l.Shares[1].Share != 0.4 {
		t.Errorf("latency shares = %+v, want 0.6 at 200 ms and 0.4 at 150 ms", l.Shares)
	}

	if e := rep.SLOs[2]; e.Good != 2 || e.Bad != 1 {
		t.Errorf("enforcement good/bad = %g/%g, want 2/1 (fb used 10 s after its revocation)", e.Good, e.Bad)
	} else {
		eq("enforcement SLI", e.SLI, 200.0/3)
	}

	// A maintenance window over the outage hour, recomputed.
	rep, err = slo.BuildReport(ctx, conn, []slo.Spec{validation}, slo.ReportOptions{Database: db, From: t0, To: to,
		Exclude: []slo.Interval{{From: t0.Add(9 * time.Hour), To: to}}})
	if err != nil {
		t.Fatal(err)
	}
	if v := rep.SLOs[0]; v.Good != 8210 || v.Bad != 5 {
		t.Errorf("with the outage hour excluded: good/bad = %g/%g, want 8210/5", v.Good, v.Bad)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
