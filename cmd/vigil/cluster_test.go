package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/golden"
	"github.com/vigilhq/vigil/internal/testenv"
)

// TestClickHouseCluster runs vigil against a real ClickHouse cluster:
// Debian's ZooKeeper and two shards of two clickhouse-server replicas.
// `vigil migrate --cluster` makes the schema; `vigil run`, given every
// server's address and clickhouse.cluster, stores a steady stream (with
// invalid messages and token thefts) through the Distributed tables while
// it is killed -9 between a theft's rotation and its replay (the replay
// is judged on state rebuilt from the cluster), and while the server it
// talks to and then a replica of the other shard are killed and
// restarted. Afterwards every event is stored once, every invalid message
// dead-lettered once, every theft detected and revoked once, and both
// replicas of each shard hold the same events.
func TestClickHouseCluster(t *testing.T) {
	c := testenv.Cluster(t)
	r := newRig(t, c)
	envs := map[string]string{}
	for _, kv := range r.env {
		k, v, _ := strings.Cut(kv, "=")
		envs[k] = v
	}
	delete(envs, "VIGIL_CLICKHOUSE_CLUSTER")
	out, _, err := run(t, envs, "migrate", "--cluster", c.Name)
	if err != nil || !strings.Contains(out, "on cluster "+c.Name+": applied [1 2 3 4 5]") {
		t.Fatalf("vigil migrate --cluster %s: %v\n%s", c.Name, err, out)
	}
	// The same database without the cluster is refused, naming the fix.
	if _, _, err := run(t, envs, "migrate"); err == nil || !strings.Contains(err.Error(), "was migrated on a cluster") {
		t.Errorf("vigil migrate without --cluster on a cluster's database: %v, want it refused", err)
	}

	r.start()
	stop := r.produce(1_000, 2*time.Second)
	r.steady(3 * time.Second)

	// A theft split by kill -9: login and rotation stored, vigil killed,
	// the replay judged by the restarted vigil from the cluster's state.
	recs := r.theft(1_000_000)
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic("session-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs[:2]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "the split theft's login and rotation stored", func() (bool, string) {
		n := count(t, r.conn, "SELECT uniqExact(id) FROM "+r.db+".events WHERE family_id = '"+r.key.Of("fam-th-1000000")+"'")
		return n == 2, fmt.Sprintf("%d of 2", n)
	})
	t.Log("kill -9 of vigil run between a theft's rotation and its replay")
	r.killVigil()
	if err := cl.ProduceSync(context.Background(), recs[2]).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.valid.Add(3)
	r.thefts.Add(1)
	r.steady(3 * time.Second)

	kill := func(s *chserver.Server, what string) {
		t.Helper()
		t.Logf("%s (%s) killed for 5 s", what, s.Addr())
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		r.steady(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		r.steady(3 * time.Second)
	}
	kill(c.Shards[0][0], "the server vigil talks to (shard 1, replica 1)")
	kill(c.Shards[1][0], "shard 2's first replica")
	stop()
	r.verify()

	// Both replicas of each shard converge on the same events, and the
	// shards split them.
	var total uint64
	for s, replicas := range c.Shards {
		var conns []driver.Conn
		for _, n := range replicas {
			conns = append(conns, testenv.Conn(t, n))
		}
		var counts []uint64
		testenv.WaitFor(t, 2*time.Minute, fmt.Sprintf("shard %d's replicas in step", s+1), func() (bool, string) {
			counts = counts[:0]
			for _, conn := range conns {
				counts = append(counts, count(t, conn, "SELECT uniqExact(id) FROM "+r.db+".events_local"))
			}
			return slices.Min(counts) == slices.Max(counts), fmt.Sprintf("events per replica %v", counts)
		})
		if counts[0] == 0 {
			t.Errorf("shard %d holds no events", s+1)
		}
		total += counts[0]
	}
	if total != uint64(r.valid.Load()) {
		t.Errorf("the shards hold %d events between them, want %d", total, r.valid.Load())
	}
	t.Logf("%d valid events, %d invalid, %d thefts through the cluster: stored, dead-lettered, detected and revoked once; replicas in step",
		r.valid.Load(), r.invalid.Load(), r.thefts.Load())
}

// TestClusterDeployFiles keeps deploy/clickhouse-cluster in step with the
// binary and proves it on the real cluster: vigil.sql is what `vigil
// migrate --cluster vigil --print` prints (go test -run
// TestClusterDeployFiles -update rewrites it), cluster.xml defines that
// cluster with ZooKeeper and the DDL queue, macros.xml gives the macros the
// DDL uses; applied by hand on the test cluster, vigil.sql makes the
// tables, and `vigil migrate --cluster` afterwards records the versions
// and finds nothing else to do.
func TestClusterDeployFiles(t *testing.T) {
	const dir = "../../deploy/clickhouse-cluster/"
	out, _, err := run(t, nil, "migrate", "--cluster", "vigil", "--print")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, dir+"vigil.sql", []byte(out))
	if _, _, err := run(t, nil, "migrate", "--print", "--status"); exitCode(err) != 2 {
		t.Errorf("migrate --print --status: %v, want a usage error", err)
	}

	var cfg struct {
		Remote struct {
			Clusters []struct {
				XMLName xml.Name
				Shards  []struct {
					Internal bool `xml:"internal_replication"`
					Replicas []struct {
						Host string `xml:"host"`
					} `xml:"replica"`
				} `xml:"shard"`
			} `xml:",any"`
		} `xml:"remote_servers"`
		ZooKeeper []string `xml:"zookeeper>node>host"`
		DDLPath   string   `xml:"distributed_ddl>path"`
		Macros    struct {
			Shard   string `xml:"shard"`
			Replica string `xml:"replica"`
		} `xml:"macros"`
	}
	for _, f := range []string{"cluster.xml", "macros.xml"} {
		b, err := os.ReadFile(dir + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if len(cfg.Remote.Clusters) != 1 || cfg.Remote.Clusters[0].XMLName.Local != "vigil" {
		t.Fatalf("cluster.xml: remote_servers %+v, want the one cluster vigil.sql is for (vigil)", cfg.Remote.Clusters)
	}
	for i, s := range cfg.Remote.Clusters[0].Shards {
		if !s.Internal || len(s.Replicas) < 2 {
			t.Errorf("cluster.xml: shard %d has internal_replication %v and %d replicas; want true and at least 2", i+1, s.Internal, len(s.Replicas))
		}
	}
	if len(cfg.ZooKeeper) == 0 || cfg.DDLPath == "" {
		t.Errorf("cluster.xml: zookeeper %v, distributed_ddl path %q; ON CLUSTER needs both", cfg.ZooKeeper, cfg.DDLPath)
	}
	if cfg.Macros.Shard == "" || cfg.Macros.Replica == "" || !strings.Contains(out, "{shard}") || !strings.Contains(out, "{replica}") {
		t.Errorf("macros.xml gives shard %q replica %q for the DDL's {shard} and {replica}", cfg.Macros.Shard, cfg.Macros.Replica)
	}

	// Applied by hand, under another database name, on the real cluster.
	c := testenv.Cluster(t)
	conn := testenv.Conn(t, c.Shards[0][0])
	db := testenv.Database(t)
	sql := strings.NewReplacer("vigil.", db+".", "/vigil/"+"schema", "/"+db+"/schema", "DATABASE IF NOT EXISTS vigil ", "DATABASE IF NOT EXISTS "+db+" ").Replace(out)
	sql = regexp.MustCompile(`(/clickhouse/tables/vigil/\{shard\}/)vigil/`).ReplaceAllString(sql, "${1}"+db+"/")
	sql = regexp.MustCompile(`Distributed\(vigil, vigil,`).ReplaceAllString(sql, "Distributed(vigil, "+db+",")
	n := 0
	for _, st := range strings.Split(sql, ";\n") {
		var lines []string
		for _, l := range strings.Split(st, "\n") {
			if !strings.HasPrefix(l, "--") {
				lines = append(lines, l)
			}
		}
		if st := strings.TrimSpace(strings.Join(lines, "\n")); st != "" {
			if err := conn.Exec(context.Background(), st); err != nil {
				t.Fatalf("vigil.sql statement %d: %v\n%s", n+1, err, st)
			}
			n++
		}
	}
	envs := map[string]string{"VIGIL_CLICKHOUSE_ADDR": c.Shards[0][0].Addr(), "VIGIL_CLICKHOUSE_DATABASE": db, "VIGIL_CLICKHOUSE_CLUSTER": c.Name}
	got, _, err := run(t, envs, "migrate")
	if err != nil || !strings.Contains(got, "applied [1 2 3 4 5]") {
		t.Fatalf("vigil migrate after vigil.sql: %v\n%s", err, got)
	}
	if k := count(t, conn, "SELECT count() FROM system.tables WHERE database = '"+db+"' AND engine = 'Distributed'"); k != 6 {
		t.Errorf("%d Distributed tables after vigil.sql (%d statements), want 6", k, n)
	}
	if got, _, err := run(t, envs, "migrate", "--status"); err != nil || !strings.Contains(got, "0 pending") {
		t.Errorf("vigil migrate --status: %v\n%s", err, got)
	}
}
