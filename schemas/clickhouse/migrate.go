// Package clickhouse holds vigil's ClickHouse schema as numbered, embedded
// SQL migrations, the migrator that applies them, and connection setup.
//
// The SQL uses only what Debian's ClickHouse 18.16 shares with current
// releases (see DESIGN.md §4). Every statement is idempotent (IF NOT EXISTS),
// so concurrent migrators are safe: whoever loses a race treats "already
// exists" as success, and schema_migrations (a ReplacingMergeTree keyed by
// version) collapses duplicate records.
package clickhouse

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version    int
	Name       string
	Statements []string // with ${db} still unexpanded
	Checksum   string   // sha256 of the file
}

var fileRE = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrations: bad file name %q (want NNNN_name.sql)", e.Name())
		}
		body, err := fs.ReadFile(migrationFS, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		sum := sha256.Sum256(body)
		out = append(out, Migration{Version: v, Name: m[2], Statements: splitStatements(string(body)), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("migrations: version %d missing or duplicated", i+1)
		}
	}
	return out, nil
}

// splitStatements drops "--" comment lines and splits on ";" at line ends.
func splitStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") || t == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			stmts = append(stmts, s)
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// Result says what Migrate did.
type Result struct {
	Applied []int // versions applied by this call
	Current int   // highest version recorded after the call
}

// ClickHouse error codes that mean another migrator won a race.
const (
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

var dbNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Migrate creates database db if needed and applies every migration not yet
// recorded in db.schema_migrations. It is idempotent and safe to run from
// several processes at once. An applied migration whose checksum changed is
// an error: migrations are append-only.
func Migrate(ctx context.Context, conn driver.Conn, db string) (Result, error) {
	return MigrateCluster(ctx, conn, db, "")
}

// schemaMigrationsTable records the applied migrations (${db} unexpanded).
const schemaMigrationsTable = `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
)
ENGINE = ReplacingMergeTree()
ORDER BY version`

// MigrateCluster is Migrate on the ClickHouse cluster named cluster (a
// name in the servers' remote_servers, as in system.clusters): every
// statement runs ON CLUSTER, each table is a replicated local table plus a
// Distributed table over it (see cluster.go). An empty cluster means one
// server, like Migrate. A database migrated one way cannot be migrated the
// other: that is an error naming the way it was made.
func MigrateCluster(ctx context.Context, conn driver.Conn, db, cluster string) (Result, error) {
	var res Result
	t, err := newTarget(db, cluster)
	if err != nil {
		return res, err
	}
	migs, err := Migrations()
	if err != nil {
		return res, err
	}
	if err := checkLayout(ctx, conn, db, cluster); err != nil {
		return res, err
	}
	boot, err := t.bootstrap()
	if err != nil {
		return res, err
	}
	for _, s := range boot {
		if err := exec(ctx, conn, s); err != nil {
			return res, fmt.Errorf("migrate: bootstrap: %w", err)
		}
	}
	applied, err := appliedChecksums(ctx, conn, db)
	if err != nil {
		return res, err
	}
	for _, m := range migs {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return res, fmt.Errorf("migrate: migration %04d_%s was changed after it was applied (checksum %.12s, recorded %.*s); add a new migration instead", m.Version, m.Name, m.Checksum, min(len(sum), 40), sum)
			}
			res.Current = m.Version
			continue
		}
		for i, orig := range m.Statements {
			stmts, err := t.expand(orig)
			if err != nil {
				return res, fmt.Errorf("migrate: %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
			for _, s := range stmts {
				if err := exec(ctx, conn, s); err != nil {
					return res, fmt.Errorf("migrate: %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
				}
			}
		}
		if err := record(ctx, conn, db, m); err != nil {
			return res, fmt.Errorf("migrate: record %04d_%s: %w", m.Version, m.Name, err)
		}
		res.Applied = append(res.Applied, m.Version)
		res.Current = m.Version
	}
	return res, nil
}

// DDL returns every statement Migrate (cluster "") or MigrateCluster
// would run on an empty database db, in order, without the records in
// schema_migrations: the schema for a DBA to review or apply by hand
// (`vigil migrate --print`). A later `vigil migrate` finds the tables
// there and records the versions.
func DDL(db, cluster string) ([]string, error) {
	t, err := newTarget(db, cluster)
	if err != nil {
		return nil, err
	}
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	out, err := t.bootstrap()
	if err != nil {
		return nil, err
	}
	for _, m := range migs {
		for i, orig := range m.Statements {
			stmts, err := t.expand(orig)
			if err != nil {
				return nil, fmt.Errorf("migrate: %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
			out = append(out, stmts...)
		}
	}
	return out, nil
}

// target is where a schema goes: a database on one server (cluster "")
// or on a cluster, both names checked.
type target struct{ db, cluster string }

func newTarget(db, cluster string) (target, error) {
	if !dbNameRE.MatchString(db) {
		return target{}, fmt.Errorf("migrate: bad database name %q", db)
	}
	if cluster != "" && !dbNameRE.MatchString(cluster) {
		return target{}, fmt.Errorf("migrate: bad cluster name %q", cluster)
	}
	return target{db, cluster}, nil
}

// bootstrap returns the statements that create the database and
// schema_migrations.
func (t target) bootstrap() ([]string, error) {
	db := "CREATE DATABASE IF NOT EXISTS " + t.db
	if t.cluster != "" {
		db += " ON CLUSTER " + t.cluster
	}
	stmts, err := t.expand(schemaMigrationsTable)
	if err != nil {
		return nil, fmt.Errorf("migrate: bootstrap: %w", err)
	}
	return append([]string{db}, stmts...), nil
}

// expand returns the statements that make stmt (a migration statement,
// ${db} unexpanded) on the target: itself on one server, its cluster
// forms (cluster.go) on a cluster; ${db} replaced.
func (t target) expand(stmt string) ([]string, error) {
	stmts := []string{stmt}
	if t.cluster != "" {
		var err error
		if stmts, err = clusterStatements(stmt, t.cluster); err != nil {
			return nil, err
		}
	}
	for i := range stmts {
		stmts[i] = strings.ReplaceAll(stmts[i], "${db}", t.db)
	}
	return stmts, nil
}

// checkLayout fails when the servers do not know cluster, or when db was
// already migrated the other way (on one server versus on a cluster):
// mixing the two would leave tables neither replicated nor found.
func checkLayout(ctx context.Context, conn driver.Conn, db, cluster string) error {
	if cluster != "" {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.clusters WHERE cluster = ?", cluster).Scan(&n); err != nil {
			return fmt.Errorf("migrate: look up cluster %s in system.clusters: %w", cluster, err)
		}
		if n == 0 {
			return fmt.Errorf("migrate: cluster %q is not defined on this server (no such name in system.clusters; define it in remote_servers)", cluster)
		}
	}
	var engine string
	err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = 'schema_migrations'", db).Scan(&engine)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("migrate: look up %s.schema_migrations: %w", db, err)
	}
	switch {
	case cluster != "" && engine != "Distributed":
		return fmt.Errorf("migrate: database %s was migrated on one server (schema_migrations is %s), not on cluster %s; migrate it without --cluster, or into a new database", db, engine, cluster)
	case cluster == "" && engine == "Distributed":
		return fmt.Errorf("migrate: database %s was migrated on a cluster (its tables are Distributed); pass --cluster NAME (or set clickhouse.cluster)", db)
	}
	return nil
}

// Pending returns the versions not yet applied to db (all of them if db or
// schema_migrations does not exist).
func Pending(ctx context.Context, conn driver.Conn, db string) ([]int, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	applied, err := appliedChecksums(ctx, conn, db)
	if err != nil {
		var ex *chgo.Exception
		if errors.As(err, &ex) && (ex.Code == 60 || ex.Code == 81) { // UNKNOWN_TABLE, UNKNOWN_DATABASE
			applied = nil
		} else {
			return nil, err
		}
	}
	var out []int
	for _, m := range migs {
		if _, ok := applied[m.Version]; !ok {
			out = append(out, m.Version)
		}
	}
	return out, nil
}

// appliedChecksums maps each recorded version to its checksum; if
// concurrent or past runs recorded different checksums for one version, the
// value lists them comma-separated (and will not match any file).
func appliedChecksums(ctx context.Context, conn driver.Conn, db string) (map[int]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, arrayStringConcat(arraySort(groupUniqArray(checksum)), ',') FROM "+db+".schema_migrations GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
		}
		out[int(v)] = sum
	}
	return out, rows.Err()
}

// record inserts m into schema_migrations. It uses a prepared batch: Debian's
// ClickHouse 18.16 waits for a data block after an INSERT … VALUES sent as
// plain query text.
func record(ctx context.Context, conn driver.Conn, db string, m Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name, m.Checksum, time.Now().UTC().Truncate(time.Second)); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

func exec(ctx context.Context, conn driver.Conn, stmt string) error {
	err := conn.Exec(ctx, stmt)
	var ex *chgo.Exception
	if errors.As(err, &ex) && (ex.Code == codeTableAlreadyExists || ex.Code == codeDatabaseAlreadyExists) {
		return nil
	}
	return err
}
