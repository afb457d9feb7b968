package main

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/dashboards"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/schemas"
)

// produceInvalid puts a few messages vigil must dead-letter into the
// events topic (so the dead-letter panels have rows).
func produceInvalid(t *testing.T, brokers []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("session-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := []*kgo.Record{
		{Key: []byte("bad-1"), Value: []byte(`{"not json`)},
		{Key: []byte("bad-2"), Value: []byte(`{"id":"x","type":"session.teleported"}`)},
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// checkDashboardQueries is the ClickHouse half of the dashboards'
// acceptance point 2: every ClickHouse panel and variable query, its macros
// expanded as the grafana-clickhouse-datasource plugin does, runs on
// ClickHouse 18.16 against the simulator's data:
//   - with the session dashboard on a token-theft family, every query
//     returns rows with a non-zero value;
//   - on that family's session, user and address, every events query does;
//   - on a family whose id is its session's (the default), events show;
//   - a subject full of SQL metacharacters runs every query as written and
//     finds nothing.
func checkDashboardQueries(t *testing.T, srv *chserver.Server, db, family string) {
	t.Helper()
	gs, err := dashboards.All()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := chgo.Open(&chgo.Options{Addr: []string{srv.Addr()}, Auth: chgo.Auth{Database: db, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	now := time.Now()
	r := dashboards.Range{From: now.Add(-24 * time.Hour), To: now.Add(time.Hour), Interval: time.Minute}

	// run expands and runs q for kind and subject: rows, and whether any
	// value in them is non-zero.
	run := func(q dashboards.Query, kind, subject string) (rows int, nonZero bool, sql string, err error) {
		vars := map[string]string{"tenant": "__all", "kind": kind, "subject": subject, "prometheus": "prom", "clickhouse": "ch"}
		if sql, err = dashboards.Expand(q.SQL, r, vars); err != nil {
			return 0, false, "", err
		}
		rs, err := conn.Query(ctx, sql)
		if err != nil {
			return 0, false, sql, err
		}
		defer rs.Close()
		cols := rs.ColumnTypes()
		for rs.Next() {
			rows++
			dest := make([]any, len(cols))
			for i, c := range cols {
				dest[i] = reflect.New(c.ScanType()).Interface()
			}
			if err := rs.Scan(dest...); err != nil {
				return rows, nonZero, sql, err
			}
			for _, d := range dest {
				if v := reflect.ValueOf(d).Elem(); !v.IsZero() && !(v.Kind() == reflect.Pointer && v.Elem().IsZero()) {
					nonZero = true
				}
			}
		}
		return rows, nonZero, sql, rs.Err()
	}
	where := func(q dashboards.Query) string { return q.Dashboard + "/" + q.Panel }

	n := 0
	for _, g := range gs {
		for _, q := range dashboards.Queries(g) {
			if q.SQL == "" {
				continue
			}
			n++
			rows, nonZero, sql, err := run(q, "family", family)
			// A variable's values may be "" (the default tenant).
			if err != nil || rows == 0 || !(nonZero || strings.HasPrefix(q.Panel, "variable ")) {
				t.Errorf("%s: %d rows, non-zero %v (%v)\n%s", where(q), rows, nonZero, err, sql)
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d ClickHouse queries checked", n)
	}
	t.Logf("%d ClickHouse dashboard queries returned rows for family %s", n, family)

	var session dashboards.Generated
	for _, g := range gs {
		if g.UID == "vigil-session" {
			session = g
		}
	}
	var sid, user, ip string
	if err := conn.QueryRow(ctx, "SELECT any(session_id), any(user_id), any(ip) FROM events WHERE family_id = ? AND session_id != '' AND user_id != '' AND ip != ''", family).Scan(&sid, &user, &ip); err != nil || sid == "" {
		t.Fatalf("the family's session: %q %v", sid, err)
	}
	// A family whose id is its first session's: event_subjects holds only
	// its session rows.
	const own = "ses_own_family_0001"
	var cols ingest.EventColumns
	cols.Append(&schemas.Event{ID: "evt_own_family_0001", Type: schemas.TypeSessionCreated, Time: now, Tenant: "default", UserID: "usr_own",
		SessionID: own, FamilyID: own, TokenID: "tok_own", IP: "192.0.2.7", Outcome: schemas.OutcomeSuccess, SampleRate: 1}, 0, 1)
	if err := ingest.NewClickHouseSink(conn, db).WriteEvents(ctx, &cols); err != nil {
		t.Fatal(err)
	}
	hostile := `x' OR 1=1 OR '\' --` + "\n"
	for _, c := range []struct{ kind, subject string }{{"session", sid}, {"user", user}, {"ip", ip}, {"family", own}} {
		for _, q := range dashboards.Queries(session) {
			if q.SQL == "" || !strings.Contains(q.SQL, "FROM events") {
				continue
			}
			rows, nonZero, sql, err := run(q, c.kind, c.subject)
			if err != nil || rows == 0 || !nonZero {
				t.Errorf("%s for %s %s: %d rows, non-zero %v (%v)\n%s", where(q), c.kind, c.subject, rows, nonZero, err, sql)
			}
		}
	}
	for _, kind := range []string{"family", "session", "user", "ip"} {
		for _, q := range dashboards.Queries(session) {
			if q.SQL == "" || strings.HasPrefix(q.Panel, "variable ") {
				continue
			}
			if _, nonZero, sql, err := run(q, kind, hostile); err != nil || nonZero {
				t.Errorf("%s for %s %q: non-zero %v (%v); want it to run and find nothing\n%s", where(q), kind, hostile, nonZero, err, sql)
			}
		}
	}
}
