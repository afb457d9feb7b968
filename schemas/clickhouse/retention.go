package clickhouse

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// RetainedTables lists the tables partitioned by day whose retention is
// configurable; schema_migrations is never dropped.
var RetainedTables = []string{"events", "event_subjects", "dead_letters", "anomalies", "actions"}

// DropExpired drops the whole day partitions of db.table that are older than
// keepDays days before now (a partition is dropped once its day has entirely
// passed the cutoff). keepDays 0 keeps everything. It returns the partitions
// it dropped, e.g. ["2026-01-05"]. On a cluster (cluster != "") it looks at
// the parts of table's local tables on every server and drops the
// partitions ON CLUSTER.
func DropExpired(ctx context.Context, conn driver.Conn, db, cluster, table string, keepDays int, now time.Time) ([]string, error) {
	if keepDays <= 0 {
		return nil, nil
	}
	if !dbNameRE.MatchString(db) || !dbNameRE.MatchString(table) || (cluster != "" && !dbNameRE.MatchString(cluster)) {
		return nil, fmt.Errorf("retention: bad name %s.%s (cluster %q)", db, table, cluster)
	}
	cutoff := now.UTC().AddDate(0, 0, -keepDays).Truncate(24 * time.Hour)
	parts, target := "system.parts", db+"."+table
	if cluster != "" {
		table += LocalSuffix
		parts, target = "cluster('"+cluster+"', system, parts)", db+"."+table+" ON CLUSTER "+cluster
	}
	rows, err := conn.Query(ctx, "SELECT DISTINCT partition FROM "+parts+" WHERE database = ? AND table = ? AND active", db, table)
	if err != nil {
		return nil, fmt.Errorf("retention: list partitions of %s.%s: %w", db, table, err)
	}
	var expired []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, fmt.Errorf("retention: %w", err)
		}
		day, err := time.Parse("2006-01-02", trimQuotes(p))
		if err != nil {
			continue // not a day partition
		}
		if day.Before(cutoff) {
			expired = append(expired, day.Format("2006-01-02"))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	sort.Strings(expired)
	for i, day := range expired {
		if err := conn.Exec(ctx, "ALTER TABLE "+target+" DROP PARTITION '"+day+"'"); err != nil {
			return expired[:i], fmt.Errorf("retention: drop %s.%s partition %s: %w", db, table, day, err)
		}
	}
	return expired, nil
}

// trimQuotes strips the quotes some ClickHouse versions put around a
// partition's text form.
func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1]
	}
	return s
}
