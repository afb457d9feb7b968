package main

import (
	"context"
	"strings"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/dashboards"
	"github.com/vigilhq/vigil/internal/chserver"
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
// expanded as the grafana-clickhouse-datasource plugin does and its
// variables set to a token-theft family, runs on ClickHouse 18.16 against
// the simulator's data and returns rows.
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
	now := time.Now()
	r := dashboards.Range{From: now.Add(-24 * time.Hour), To: now.Add(time.Hour), Interval: time.Minute}
	vars := map[string]string{"tenant": "__all", "kind": "family", "subject": family, "prometheus": "prom", "clickhouse": "ch"}
	n := 0
	for _, g := range gs {
		for _, q := range dashboards.Queries(g) {
			if q.SQL == "" {
				continue
			}
			n++
			sql, err := dashboards.Expand(q.SQL, r, vars)
			if err != nil {
				t.Errorf("%s/%s: %v", q.Dashboard, q.Panel, err)
				continue
			}
			rows, err := conn.Query(context.Background(), sql)
			if err != nil {
				t.Errorf("%s/%s: %v\n%s", q.Dashboard, q.Panel, err, sql)
				continue
			}
			got := 0
			for rows.Next() {
				got++
			}
			err = rows.Err()
			rows.Close()
			if err != nil || got == 0 {
				t.Errorf("%s/%s: %d rows (%v)\n%s", q.Dashboard, q.Panel, got, err, sql)
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d ClickHouse queries checked", n)
	}
	t.Logf("%d ClickHouse dashboard queries returned rows for family %s", n, family)
	if strings.Contains(family, "'") {
		t.Fatalf("family id %q would break the expanded SQL", family)
	}
}
