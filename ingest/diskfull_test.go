package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/testenv"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
	"github.com/vigilhq/vigil/sim"
)

// TestClickHouseDiskFull: ClickHouse's disk fills up mid-stream (its data
// directory is a small tmpfs, filled by a file), so its inserts fail with
// "no space left"; vigil retries, commits nothing it has not stored, and
// once space is freed stores every event exactly once.
func TestClickHouseDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=400m", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "a tmpfs mount for ClickHouse's data (needs root)", fmt.Errorf("%v: %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() }) // after the server's Close, registered later
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := chserver.Start(ctx, chserver.Options{Dir: dir})
	if errors.Is(err, chserver.ErrNotInstalled) {
		testenv.Missing(t, "clickhouse-server", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	_, brokers := testenv.Kafka(t, map[string]int{topic: 4, dlqTopic: 2})
	e := &env{t: t, brokers: brokers, conn: testenv.Conn(t, srv), db: testenv.Database(t), srvAddr: srv.Addr()}
	if _, err := chschema.Migrate(ctx, e.conn, e.db); err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultConfig()
	cfg.BatchSize = 1000
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.RetryMax = 500 * time.Millisecond
	m := ingest.NewMetrics(nil)
	in := e.ingesterWith(cfg, nil, nil, m)

	want := newExpect()
	s := sim.NewStream(sim.StreamConfig{Seed: 5, Users: 2000, InvalidEvery: 50})
	e.produce(s, 5_000, want)
	waitCaughtUp(t, in, time.Minute, 5_000)

	// Fill the disk: a file takes every free byte.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	_, err = io.CopyN(f, zeros{}, int64(st.Bavail)*st.Bsize)
	f.Close()
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	retries := func() float64 { return testutil.ToFloat64(m.Retries.WithLabelValues("insert_events")) }
	before, storedBefore := retries(), in.Stats().Events
	e.produce(s, 5_000, want)
	testenv.WaitFor(t, time.Minute, "inserts failing and retried on a full disk", func() (bool, string) {
		return retries() >= before+3, fmt.Sprintf("%v retries, %+v", retries()-before, in.Stats())
	})
	if got := in.Stats().Events; got >= storedBefore+5_000*49/50 {
		t.Fatalf("%d events stored with the disk full", got-storedBefore)
	}

	// Free the space: everything is stored, once.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, in, 2*time.Minute, 10_000)
	e.checkStored(want, false)
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
