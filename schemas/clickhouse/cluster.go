package clickhouse

import (
	"fmt"
	"regexp"
	"strings"
)

// On a cluster (vigil migrate --cluster NAME) every table of the schema
// becomes two: NAME_local, a ReplicatedReplacingMergeTree on every server
// (ON CLUSTER), replicated within its shard through ZooKeeper, and NAME, a
// Distributed table over the local ones. vigil writes and reads only the
// Distributed tables, so every query is the same as on one server. Rows
// are sharded by a hash of their sorting key, which is also what
// ReplacingMergeTree collapses on: a replayed row lands on the shard that
// holds its first copy, so FINAL and GROUP BY id stay exact. Materialized
// views are created on the local tables: each shard feeds its own part of
// the target table as rows arrive, and the replicas of the target
// replicate it.

// LocalSuffix is appended to a table's name for its replicated local table on a cluster.
const LocalSuffix = "_local"

var (
	createTableRE = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS \$\{db\}\.([a-z_]+)\s*\((.*)\)\s*ENGINE = ReplacingMergeTree\(\)\s*(.*)$`)
	orderByRE     = regexp.MustCompile(`(?s)ORDER BY\s*(\(([^)]*)\)|([A-Za-z_][A-Za-z0-9_]*))\s*$`)
	createViewRE  = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS \$\{db\}\.([a-z_]+) TO \$\{db\}\.([a-z_]+) AS\s*(.*)$`)
	fromRE        = regexp.MustCompile(`\bFROM \$\{db\}\.([a-z_]+)\b`)
)

// clusterStatements rewrites one migration statement (with ${db} still
// unexpanded) into the statements that make it on cluster. It supports
// the statement shapes vigil's migrations use and rejects any other, so a
// new kind of migration cannot silently create an unreplicated table.
func clusterStatements(stmt, cluster string) ([]string, error) {
	if m := createTableRE.FindStringSubmatch(stmt); m != nil {
		table, columns, rest := m[1], m[2], strings.TrimSpace(m[3])
		o := orderByRE.FindStringSubmatch(rest)
		if o == nil {
			return nil, fmt.Errorf("table %s: no ORDER BY to shard by", table)
		}
		key := o[2]
		if key == "" {
			key = o[3]
		}
		local := fmt.Sprintf("CREATE TABLE IF NOT EXISTS ${db}.%[1]s%[2]s ON CLUSTER %[3]s\n(%[4]s)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/%[3]s/{shard}/${db}/%[1]s', '{replica}')\n%[5]s",
			table, LocalSuffix, cluster, columns, rest)
		dist := fmt.Sprintf("CREATE TABLE IF NOT EXISTS ${db}.%[1]s ON CLUSTER %[2]s AS ${db}.%[1]s%[3]s\nENGINE = Distributed(%[2]s, ${db}, %[1]s%[3]s, cityHash64(%[4]s))",
			table, cluster, LocalSuffix, strings.Join(strings.Fields(key), " "))
		return []string{local, dist}, nil
	}
	if m := createViewRE.FindStringSubmatch(stmt); m != nil {
		view, target, query := m[1], m[2], m[3]
		query = fromRE.ReplaceAllString(query, "FROM $${db}.${1}"+LocalSuffix)
		return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.%s ON CLUSTER %s TO ${db}.%s%s AS\n%s", view, cluster, target, LocalSuffix, query)}, nil
	}
	first, _, _ := strings.Cut(strings.TrimSpace(stmt), "\n")
	return nil, fmt.Errorf("statement %q has no cluster form (only CREATE TABLE … ReplacingMergeTree and CREATE MATERIALIZED VIEW … TO are supported)", first)
}
