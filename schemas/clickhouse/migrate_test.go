package clickhouse_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/internal/testenv"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestMigrationsAreNumberedAndSplit(t *testing.T) {
	migs, err := chschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) < 3 {
		t.Fatalf("got %d migrations, want at least 3", len(migs))
	}
	for _, m := range migs {
		if len(m.Statements) == 0 {
			t.Errorf("%04d_%s has no statements", m.Version, m.Name)
		}
		for _, s := range m.Statements {
			if !strings.Contains(s, "IF NOT EXISTS") {
				t.Errorf("%04d_%s: statement is not idempotent (no IF NOT EXISTS): %.60s", m.Version, m.Name, s)
			}
		}
	}
}

// TestMigrateConcurrentlyAndAgain runs two migrators at once, then a third:
// all succeed, the tables exist once, and each version is recorded.
func TestMigrateConcurrentlyAndAgain(t *testing.T) {
	srv := testenv.ClickHouse(t)
	conn := testenv.Conn(t, srv)
	db := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = chschema.Migrate(ctx, testenv.Conn(t, srv), db) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrator %d: %v", i, err)
		}
	}
	res, err := chschema.Migrate(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	migs, _ := chschema.Migrations()
	if len(res.Applied) != 0 || res.Current != len(migs) {
		t.Errorf("third run: applied %v, current %d; want nothing applied and current %d", res.Applied, res.Current, len(migs))
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".schema_migrations FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if int(n) != len(migs) {
		t.Errorf("schema_migrations after dedup: %d rows, want %d", n, len(migs))
	}
	for _, table := range []string{"events", "dead_letters", "event_subjects", "schema_migrations"} {
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: count %d, err %v", table, n, err)
		}
	}
	pending, err := chschema.Pending(ctx, conn, db)
	if err != nil || len(pending) != 0 {
		t.Errorf("pending after migrate: %v, %v", pending, err)
	}
	pending, err = chschema.Pending(ctx, conn, "vigil_never_created")
	if err != nil || len(pending) != len(migs) {
		t.Errorf("pending on a missing database: %v, %v; want all %d", pending, err, len(migs))
	}
}

// TestMigrateRejectsEditedMigration: an applied migration whose file changed
// is an error that says so, not a silent skip.
func TestMigrateRejectsEditedMigration(t *testing.T) {
	ctx := context.Background()
	conn, db := migrated(t)
	// Pretend version 1 was (also) applied from a different file.
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(1), "events", "deadbeefdeadbeef", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	_, err = chschema.MigrateCluster(ctx, conn, db, testenv.ClusterOf(testenv.ClickHouse(t)))
	if err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("got %v, want an error about the changed migration", err)
	}
}

func TestMigrateRejectsBadDatabaseName(t *testing.T) {
	srv := testenv.ClickHouse(t)
	_, err := chschema.Migrate(context.Background(), testenv.Conn(t, srv), "vigil; DROP TABLE x")
	if err == nil || !strings.Contains(err.Error(), "bad database name") {
		t.Fatalf("got %v, want bad database name", err)
	}
}

// TestDropExpired keeps the days inside the retention and drops whole older
// day partitions, and keeps everything with retention 0.
func TestDropExpired(t *testing.T) {
	ctx := context.Background()
	conn, db := migrated(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".dead_letters (topic, partition, offset, message_time, received_at, reason)")
	if err != nil {
		t.Fatal(err)
	}
	for i, age := range []int{0, 1, 6, 7, 8, 30} { // days before now
		ts := now.AddDate(0, 0, -age)
		if err := b.Append("session-events", uint32(0), int64(i), ts, ts, "bad_ip"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	f := func(keep int, wantDropped []string, wantLeft uint64) {
		t.Helper()
		dropped, err := chschema.DropExpired(ctx, conn, db, testenv.ClusterOf(testenv.ClickHouse(t)), "dead_letters", keep, now)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(dropped, ",") != strings.Join(wantDropped, ",") {
			t.Errorf("keep %d days: dropped %v, want %v", keep, dropped, wantDropped)
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".dead_letters").Scan(&n); err != nil || n != wantLeft {
			t.Errorf("keep %d days: %d rows left (err %v), want %d", keep, n, err, wantLeft)
		}
	}
	f(0, nil, 6)
	f(7, []string{"2026-10-24", "2026-11-15"}, 4)
	f(7, nil, 4)
	f(1, []string{"2026-11-16", "2026-11-17"}, 2)
}

// migrated returns a connection to the shared server and a fresh, migrated database.
func migrated(t *testing.T) (driver.Conn, string) {
	t.Helper()
	srv := testenv.ClickHouse(t)
	conn := testenv.Conn(t, srv)
	db := testenv.Database(t)
	if _, err := chschema.MigrateCluster(context.Background(), conn, db, testenv.ClusterOf(srv)); err != nil {
		t.Fatal(err)
	}
	return conn, db
}

// TestDDLAppliedByHand applies what `vigil migrate --print` prints to an
// empty database on one server: every table is there, and Migrate then
// only records the versions. Bad names are refused.
func TestDDLAppliedByHand(t *testing.T) {
	ctx := context.Background()
	srv := testenv.ClickHouse(t)
	if testenv.ClusterMode() {
		t.Log("on one server only: TestClusterDeployFiles (cmd/vigil) applies the cluster form")
	}
	conn := testenv.Conn(t, srv)
	db := testenv.Database(t)
	stmts, err := chschema.DDL(db, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("statement %d: %v\n%s", i+1, err, s)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", db).Scan(&n); err != nil || n != uint64(len(chschema.RetainedTables)+2) {
		t.Errorf("%d tables after the DDL (err %v), want %d: the retained ones, schema_migrations and the view", n, err, len(chschema.RetainedTables)+2)
	}
	res, err := chschema.Migrate(ctx, conn, db)
	migs, _ := chschema.Migrations()
	if err != nil || len(res.Applied) != len(migs) {
		t.Errorf("Migrate after the DDL: applied %v, err %v; want every version recorded", res.Applied, err)
	}
	for _, c := range []struct{ db, cluster string }{{"bad-db", ""}, {"vigil", "bad cluster"}} {
		if _, err := chschema.DDL(c.db, c.cluster); err == nil {
			t.Errorf("DDL(%q, %q): no error", c.db, c.cluster)
		}
	}
}
