package postmortem_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/postmortem"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
)

// BenchmarkTimeline measures `vigil timeline` lookups over a store of
// VIGIL_BENCH_EVENTS (default 10 million) events: 500,000 sessions of 20
// events over a day, 100,000 users, 200,000 addresses, generated inside
// ClickHouse (INSERT … SELECT FROM numbers, through the event_subjects
// view as vigil's inserts go). Loading is outside the timer.
//
//	go test -run '^$' -bench Timeline -benchtime 20x ./postmortem
func BenchmarkTimeline(b *testing.B) {
	n := 10_000_000
	if v := os.Getenv("VIGIL_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	srv, raw, db := testenv.MigratedDatabase(b)
	ctx := context.Background()
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	// Session k (of 500,000) has its 20 events spread over the day.
	q := fmt.Sprintf(`INSERT INTO %s.events (id, type, time, time_ns, source, tenant, user_id, session_id, family_id, token_id, parent_token_id, ip, user_agent, country, asn, outcome, sample_rate)
SELECT concat('evt_', toString(number)) AS id,
       CAST(multiIf(intDiv(number, 500000) = 0, 1, number %% 7 = 0, 4, 3) AS Enum8('session.created' = 1, 'login.failed' = 2, 'session.validated' = 3, 'token.refreshed' = 4, 'token.refresh_failed' = 5, 'session.elevated' = 6, 'session.logout' = 7, 'session.expired' = 8, 'session.revoked' = 9)) AS type,
       toDateTime(%d + intDiv(number, 500000) * 4000 + (number %% 500000) %% 3600) AS time,
       toInt64(time) * 1000000000 + number %% 1000000000 AS time_ns,
       'auth', 'default',
       concat('usr_', toString(number %% 100000)),
       concat('ses_', toString(number %% 500000)) AS sid,
       sid,
       concat('tok_', toString(number)), concat('tok_', toString(number - 500000)),
       IPv4NumToString(toUInt32(167772160 + number %% 200000)),
       'Mozilla/5.0', 'DE', 3320, CAST(1 AS Enum8('' = 0, 'success' = 1, 'failure' = 2)), 1
FROM numbers(%d)`, db, base.Unix(), n)
	var have uint64
	if err := raw.QueryRow(ctx, "SELECT count() FROM "+db+".events").Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have < uint64(n) {
		if err := raw.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
		_ = raw.Exec(ctx, "OPTIMIZE TABLE "+db+".event_subjects")
		b.Logf("loaded %d events in %s", n, time.Since(start).Round(time.Second))
	}
	conn, err := chschema.Open(ctx, chschema.ConnOptions{Addr: []string{srv.Addr()}, Username: "default", Database: db})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// For contrast: the same session's events by a scan of events, as
	// without the event_subjects lookup table.
	b.Run("session-scan", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var n uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE session_id = ?", "ses_"+strconv.Itoa((i*7919)%500000)).Scan(&n); err != nil || n == 0 {
				b.Fatalf("scan: %d events, %v", n, err)
			}
		}
	})
	for _, c := range []struct {
		name, kind string
		subject    func(i int) string
	}{
		{"session", "session", func(i int) string { return "ses_" + strconv.Itoa((i*7919)%500000) }},
		{"user", "user", func(i int) string { return "usr_" + strconv.Itoa((i*7919)%100000) }},
		{"ip", "ip", func(i int) string {
			return fmt.Sprintf("10.%d.%d.%d", (i*7919)%200000/65536, (i*7919)%65536/256, (i*7919)%256)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			rows := 0
			for i := 0; b.Loop(); i++ {
				es, err := postmortem.Timeline(ctx, conn, postmortem.TimelineOptions{Kind: c.kind, Subject: c.subject(i),
					From: base.Add(-29 * 24 * time.Hour), To: base.Add(24 * time.Hour)})
				if err != nil {
					b.Fatal(err)
				}
				if len(es) == 0 {
					b.Fatalf("%s %s: empty timeline", c.kind, c.subject(i))
				}
				rows += len(es)
			}
			b.ReportMetric(float64(rows)/float64(b.N), "entries/op")
		})
	}
}
