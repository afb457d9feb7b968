package clickhouse_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/testenv"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
)

// TestMigrateCluster migrates one database on a real cluster (ZooKeeper,
// two shards of two replicas) from two servers at once and checks what
// vigil relies on: every server has the replicated local tables and the
// Distributed tables; rows written through a Distributed table land on
// both shards, reach both replicas of their shard, and a replayed row
// collapses under FINAL; the timeline view fills event_subjects on every
// shard; retention drops partitions on every server; and a database made
// one way cannot be migrated the other.
func TestMigrateCluster(t *testing.T) {
	c := testenv.Cluster(t)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes() {
				t.Logf("server %s (pid %d):\n%s", n.Addr(), n.PID(), n.LogTail())
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conns := map[*chserver.Server]driver.Conn{}
	for _, n := range c.Nodes() {
		conns[n] = testenv.Conn(t, n)
	}
	first, last := c.Shards[0][0], c.Shards[len(c.Shards)-1][len(c.Shards[0])-1]
	conn := conns[first]
	db := testenv.Database(t)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []*chserver.Server{first, last} {
		wg.Go(func() { _, errs[i] = chschema.MigrateCluster(ctx, conns[n], db, c.Name) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrator %d: %v", i, err)
		}
	}
	res, err := chschema.MigrateCluster(ctx, conn, db, c.Name)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("third migration: applied %v, err %v; want nothing applied", res.Applied, err)
	}
	migs, _ := chschema.Migrations()
	if res.Current != len(migs) {
		t.Errorf("schema version %d, want %d", res.Current, len(migs))
	}

	// Every server has every table, in its cluster form.
	tables := append([]string{"schema_migrations"}, chschema.RetainedTables...)
	for _, n := range c.Nodes() {
		got := map[string]string{}
		rows, err := conns[n].Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", db)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name, engine string
			if err := rows.Scan(&name, &engine); err != nil {
				t.Fatal(err)
			}
			got[name] = engine
		}
		rows.Close()
		for _, tb := range tables {
			if got[tb] != "Distributed" || got[tb+chschema.LocalSuffix] != "ReplicatedReplacingMergeTree" {
				t.Errorf("server %s: %s is %q and %s_local is %q, want Distributed over ReplicatedReplacingMergeTree", n.Addr(), tb, got[tb], tb, got[tb+chschema.LocalSuffix])
			}
		}
		if got["event_subjects_mv"] != "MaterializedView" {
			t.Errorf("server %s: event_subjects_mv is %q", n.Addr(), got["event_subjects_mv"])
		}
	}

	// 200 events through the Distributed table, then 50 of them again (a
	// replay after a lost answer): 200 distinct rows, on both shards.
	now := time.Now().UTC().Truncate(time.Second)
	insert := func(from, to int) {
		t.Helper()
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".events (id, type, time, time_ns, user_id, session_id, family_id, ip)")
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			ts := now.Add(time.Duration(i) * time.Millisecond)
			if err := b.Append(fmt.Sprintf("ev-%d", i), "session.created", ts, ts.UnixNano(), fmt.Sprintf("u%d", i), fmt.Sprintf("s%d", i), fmt.Sprintf("f%d", i), "10.0.0.1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	insert(0, 200)
	insert(150, 200)
	count := func(conn driver.Conn, query string) uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	if n := count(conn, "SELECT count() FROM "+db+".events FINAL"); n != 200 {
		t.Errorf("events FINAL through the Distributed table: %d rows, want 200", n)
	}
	if n := count(conn, "SELECT uniqExact(id) FROM "+db+".events"); n != 200 {
		t.Errorf("distinct events: %d, want 200", n)
	}
	// event_subjects: session, family, user and ip per event; the ip is
	// the same for all.
	if n := count(conn, "SELECT count() FROM "+db+".event_subjects FINAL WHERE kind != 'ip'"); n != 600 {
		t.Errorf("event_subjects FINAL (session, family, user): %d rows, want 600", n)
	}
	var total uint64
	for s, replicas := range c.Shards {
		var want uint64
		for r, n := range replicas {
			q := "SELECT uniqExact(id) FROM " + db + ".events_local"
			if r == 0 {
				want = count(conns[n], q)
				total += want
				if want == 0 {
					t.Errorf("shard %d holds no events: rows are not spread", s+1)
				}
				continue
			}
			testenv.WaitFor(t, time.Minute, fmt.Sprintf("shard %d replica %d to replicate", s+1, r+1), func() (bool, string) {
				got := count(conns[n], q)
				subj := count(conns[n], "SELECT count() FROM "+db+".event_subjects_local FINAL WHERE kind != 'ip'")
				return got == want && subj == 3*want, fmt.Sprintf("%d of %d events, %d of %d subjects", got, want, subj, 3*want)
			})
		}
	}
	if total != 200 {
		t.Errorf("the shards' first replicas hold %d distinct events, want 200 (a row on two shards?)", total)
	}

	// Retention drops whole days on every server.
	old := now.AddDate(0, 0, -40)
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".dead_letters (topic, partition, offset, message_time, received_at, reason)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := b.Append("session-events", uint32(i%4), int64(i), old, old, "bad_ip"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	dropped, err := chschema.DropExpired(ctx, conn, db, c.Name, "dead_letters", 30, now)
	if err != nil || len(dropped) != 1 {
		t.Fatalf("DropExpired: dropped %v, err %v; want one day", dropped, err)
	}
	for _, n := range c.Nodes() {
		testenv.WaitFor(t, time.Minute, "the old partition to go from "+n.Addr(), func() (bool, string) {
			got := count(conns[n], "SELECT count() FROM "+db+".dead_letters_local")
			return got == 0, fmt.Sprintf("%d rows", got)
		})
	}

	// The wrong way is refused with a message that says what to do.
	f := func(cluster, db, want string) {
		t.Helper()
		_, err := chschema.MigrateCluster(ctx, conn, db, cluster)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("MigrateCluster(%q, %q) = %v, want an error containing %q", db, cluster, err, want)
		}
	}
	f("", db, "was migrated on a cluster")
	f("nosuch", db, `cluster "nosuch" is not defined on this server`)
	single := testenv.Database(t)
	if _, err := chschema.Migrate(ctx, conn, single); err != nil {
		t.Fatal(err)
	}
	f(c.Name, single, "was migrated on one server")
}
