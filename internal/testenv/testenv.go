// Package testenv starts the real services tests need: a private
// clickhouse-server on free ports and an in-process kfake Kafka cluster
// reachable over TCP.
//
// A missing service skips the test, except when VIGIL_REQUIRE_SERVICES=1 (set
// by CI), where it fails the test.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/localkafka"
	"github.com/vigilhq/vigil/internal/zkserver"
	"github.com/vigilhq/vigil/schemas"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
)

// RequireServices reports whether missing services must fail tests (VIGIL_REQUIRE_SERVICES=1).
func RequireServices() bool { return os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" }

// Missing skips t, or fails it when services are required, naming what is missing.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if RequireServices() {
		t.Fatalf("%s is required (VIGIL_REQUIRE_SERVICES=1) but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable, skipping: %v", what, err)
}

var (
	sharedOnce sync.Once
	shared     *chserver.Server
	sharedErr  error
	dbSeq      atomic.Int64
)

// Main runs the package's tests, stops the shared ClickHouse server, and
// then fails the run if goroutines leaked (goleak, with the given ignores);
// call it from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M, ignore ...goleak.Option) int {
	code := m.Run()
	if shared != nil {
		_ = shared.Close()
	}
	if cluster != nil {
		_ = cluster.Close()
	}
	if zookeeper != nil {
		_ = zookeeper.Close()
	}
	if code == 0 {
		if err := goleak.Find(ignore...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// ClusterMode reports whether the package's tests run against a ClickHouse
// cluster (VIGIL_TEST_CLICKHOUSE_CLUSTER=1, `make test-cluster`) instead of
// one server: ClickHouse then returns the cluster's first server, and
// MigratedDatabase migrates on the cluster.
func ClusterMode() bool { return os.Getenv("VIGIL_TEST_CLICKHOUSE_CLUSTER") == "1" }

// ClusterName is the name of the test cluster in its servers' remote_servers.
const ClusterName = "vigil"

var (
	clusterOnce sync.Once
	cluster     *chserver.Cluster
	zookeeper   *zkserver.Server
	clusterErr  error
)

// Cluster returns the package's shared ClickHouse cluster, starting it on
// first use: Debian's ZooKeeper and four clickhouse-server processes, two
// shards of two replicas each, named ClusterName.
func Cluster(t testing.TB) *chserver.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if zookeeper, clusterErr = zkserver.Start(ctx); clusterErr != nil {
			return
		}
		// A server that lost its port to another starting alongside
		// (chosen free, taken before it bound) exits; try fresh ports.
		for attempt := 0; attempt < 3; attempt++ {
			cluster, clusterErr = chserver.StartCluster(ctx, chserver.ClusterOptions{Name: ClusterName, Shards: 2, Replicas: 2, ZooKeeper: zookeeper.Addr(),
				// The first replica of each shard serves both inserts and
				// reads, so a test reads what it wrote without waiting for
				// replication.
				ExtraProfile: "<load_balancing>in_order</load_balancing>"})
			if clusterErr == nil || errors.Is(clusterErr, chserver.ErrNotInstalled) {
				break
			}
			fmt.Fprintf(os.Stderr, "testenv: start clickhouse cluster (attempt %d): %v\n", attempt+1, clusterErr)
		}
	})
	if clusterErr != nil {
		switch {
		case errors.Is(clusterErr, zkserver.ErrNotInstalled):
			Missing(t, "zookeeper", clusterErr)
		case errors.Is(clusterErr, chserver.ErrNotInstalled):
			Missing(t, "clickhouse-server", clusterErr)
		}
		t.Fatalf("start clickhouse cluster: %v", clusterErr)
	}
	return cluster
}

// ClickHouse returns the package's shared ClickHouse server, starting it on
// first use; in ClusterMode it is the first server of the shared cluster.
func ClickHouse(t testing.TB) *chserver.Server {
	t.Helper()
	if ClusterMode() {
		return Cluster(t).Shards[0][0]
	}
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared, sharedErr = chserver.Start(ctx, chserver.Options{})
	})
	if sharedErr != nil {
		if errors.Is(sharedErr, chserver.ErrNotInstalled) {
			Missing(t, "clickhouse-server", sharedErr)
		}
		t.Fatalf("start clickhouse-server: %v", sharedErr)
	}
	return shared
}

// OwnClickHouse starts a ClickHouse server for t alone (for tests that stop
// and restart it); it is closed when t ends.
func OwnClickHouse(t testing.TB) *chserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := chserver.Start(ctx, chserver.Options{})
	if err != nil {
		if errors.Is(err, chserver.ErrNotInstalled) {
			Missing(t, "clickhouse-server", err)
		}
		t.Fatalf("start clickhouse-server: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Conn opens a native-protocol connection to srv, closed when t ends.
func Conn(t testing.TB, srv *chserver.Server) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chschema.Open(ctx, chschema.ConnOptions{Addr: []string{srv.Addr()}, Username: "default", MaxOpenConns: 8, ReadTimeout: time.Minute, Cluster: ClusterOf(srv)})
	if err != nil {
		t.Fatalf("connect to clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Database returns a fresh, unique database name for t (not yet created).
func Database(t testing.TB) string {
	return fmt.Sprintf("vigil_test_%d_%d", os.Getpid(), dbSeq.Add(1))
}

// Kafka starts an in-process kfake cluster listening on loopback TCP with the
// given topics (name → partitions), closed when t ends, and returns its
// seed broker addresses.
func Kafka(t testing.TB, topics map[string]int) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := localkafka.Start(topics)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// WaitFor polls cond every 50ms until it holds, failing t with the last
// state cond reported if timeout passes first. It waits for a condition,
// never for a fixed time.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		<-tick.C
	}
}

// TokenTheft returns a session's login and first token rotation from its
// owner's client around now, and the replay of the rotated token from an
// attacker's client ten seconds later (schemas.TokenTheft).
func TokenTheft(now time.Time) (created, rotation, replay schemas.Event) {
	return schemas.TokenTheft(now)
}

// MigratedDatabase returns the shared ClickHouse server, a connection and a
// fresh database with every migration applied.
func MigratedDatabase(t testing.TB) (*chserver.Server, driver.Conn, string) {
	t.Helper()
	srv := ClickHouse(t)
	conn := Conn(t, srv)
	db := Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := chschema.MigrateCluster(ctx, conn, db, ClusterOf(srv)); err != nil {
		t.Fatalf("migrate %s: %v", db, err)
	}
	return srv, conn, db
}

// clusterOf returns ClusterName when srv belongs to the shared test
// cluster, else "".
func ClusterOf(srv *chserver.Server) string {
	if cluster == nil {
		return ""
	}
	for _, n := range cluster.Nodes() {
		if n == srv {
			return ClusterName
		}
	}
	return ""
}

// WantErrorLines checks that err has exactly one line per substring in
// want, each containing its substring, in order: the shape of vigil's
// joined validation errors.
func WantErrorLines(t testing.TB, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %d", len(want))
	}
	lines := strings.Split(err.Error(), "\n")
	for i, w := range want {
		if i >= len(lines) {
			t.Errorf("missing error %d %q", i, w)
			continue
		}
		if !strings.Contains(lines[i], w) {
			t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
}
