package detect_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
)

// bruteForce returns a brute force on user u of tenant t: 30 failed
// logins in 30 s from ten addresses of 198.51.100.0/24, one partition,
// followed by a quiet minute of one validation (so the watermark passes).
func bruteForce(t0 time.Time, tenant, u string) []schemas.Event {
	return slowBruteForce(t0, tenant, u, 30)
}

// slowBruteForce is bruteForce with n failures, one a second.
func slowBruteForce(t0 time.Time, tenant, u string, n int) []schemas.Event {
	var evs []schemas.Event
	for i := range n {
		evs = append(evs, schemas.Event{
			ID: fmt.Sprintf("bf-%s-%s-%d", u, t0.Format("150405"), i), Type: schemas.TypeLoginFailed, Time: t0.Add(time.Duration(i) * time.Second),
			Tenant: tenant, UserID: u, IP: fmt.Sprintf("198.51.100.%d", 10+i%10), Outcome: schemas.OutcomeFailure, Reason: "bad_password",
		})
	}
	evs = append(evs, schemas.Event{ID: "quiet-" + u + t0.Format("150405"), Type: schemas.TypeSessionValidated, Time: t0.Add(time.Duration(n)*time.Second + 90*time.Second), Tenant: tenant,
		UserID: "someone", SessionID: "s", FamilyID: "s", Outcome: schemas.OutcomeSuccess})
	return evs
}

func store(t *testing.T, conn driver.Conn, db string, evs []schemas.Event) {
	t.Helper()
	var cols ingest.EventColumns
	for i := range evs {
		cols.Append(&evs[i], 0, int64(i))
	}
	if err := ingest.NewClickHouseSink(conn, db).WriteEvents(context.Background(), &cols); err != nil {
		t.Fatal(err)
	}
}

// TestWindowAllowlists checks that allowlisted users and source prefixes
// are left out before anything is counted.
func TestWindowAllowlists(t *testing.T) {
	_, conn, db := testenv.MigratedDatabase(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	store(t, conn, db, bruteForce(t0, "acme", "alice"))
	f := func(name string, mutate func(*detect.Config), want int) {
		t.Helper()
		cfg := detect.DefaultConfig()
		mutate(&cfg)
		as, err := windowsOf(t, cfg, conn, db).Evaluate(context.Background(), t0.Add(-time.Minute), t0.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != want {
			t.Errorf("%s: %d anomalies %v, want %d", name, len(as), as, want)
		}
		for _, a := range as {
			// The first failure not allowlisted: 09:00:00, or 09:00:01 when .10 is.
			if a.Kind != "brute_force" || a.UserID != "alice" || a.Tenant != "acme" || a.FirstEventTime.Before(t0) || a.FirstEventTime.After(t0.Add(time.Second)) {
				t.Errorf("%s: got %+v, want brute_force on acme/alice from %s", name, a, t0)
			}
		}
	}
	f("no allowlist", func(*detect.Config) {}, 1)
	f("user allowlisted", func(c *detect.Config) { c.Window.AllowUsers = []string{"bob", "alice"} }, 0)
	f("sources allowlisted", func(c *detect.Config) { c.Window.AllowCIDRs = []string{"198.51.100.0/24", "2001:db8::/32"} }, 0)
	f("other sources allowlisted", func(c *detect.Config) { c.Window.AllowCIDRs = []string{"198.51.101.0/24", "198.51.100.10/32"} }, 1)
	f("an IPv6 prefix does not cover IPv4", func(c *detect.Config) { c.Window.AllowCIDRs = []string{"::/0"} }, 1)
	f("::/0 keeps the other entries", func(c *detect.Config) {
		c.Window.AllowUsers = []string{"alice"}
		c.Window.AllowCIDRs = []string{"10.0.0.0/8", "::/0"}
	}, 0)
}

// TestWindowRunnerKeepsAndReseeds checks the runner's promises: a failed
// write keeps the anomalies and retries them, an inactive runner judges
// nothing, and a runner taking over (restart, rebalance) reloads the open
// episodes instead of raising a subject still firing again.
func TestWindowRunnerKeepsAndReseeds(t *testing.T) {
	_, conn, db := testenv.MigratedDatabase(t)
	t0 := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	store(t, conn, db, bruteForce(t0, "acme", "alice"))
	sink := ingest.NewClickHouseSink(conn, db)
	var written []detect.Anomaly
	fail := true
	wall := time.Now()
	newRunner := func() *detect.WindowRunner {
		r, err := detect.NewWindowRunner(detect.RunnerOptions{
			Windows: windowsOf(t, detect.DefaultConfig(), conn, db), Times: detect.ClickHouseTimes(conn, db),
			Now: func() time.Time { return wall },
			Write: func(ctx context.Context, as []detect.Anomaly) error {
				if fail {
					return errors.New("clickhouse away")
				}
				written = append(written, as...)
				return sink.WriteAnomalies(ctx, as)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ctx := context.Background()
	r := newRunner()
	if err := r.Round(ctx); err != nil || len(written) != 0 {
		t.Fatalf("inactive runner: %v, wrote %d", err, len(written))
	}
	r.SetActive(true)
	if err := r.Round(ctx); err != nil || len(written) != 0 {
		t.Fatalf("first round, the partition not yet seen moving: %v, wrote %d", err, len(written))
	}
	// Traffic goes on: the partition moves, so the watermark can be trusted.
	store(t, conn, db, []schemas.Event{{ID: "tick-1", Type: schemas.TypeSessionValidated, Time: t0.Add(3 * time.Minute), Tenant: "acme",
		UserID: "someone", SessionID: "s", FamilyID: "s", Outcome: schemas.OutcomeSuccess}})
	wall = wall.Add(time.Second)
	if err := r.Round(ctx); err == nil {
		t.Fatal("a failed write was not reported")
	}
	fail = false
	if err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if len(written) != 1 || written[0].Kind != "brute_force" {
		t.Fatalf("after the retry wrote %v, want the brute force once", written)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// More of the same attack after a restart: the episode is still open.
	store(t, conn, db, bruteForce(t0.Add(90*time.Second), "acme", "alice"))
	r2 := newRunner()
	r2.SetActive(true)
	if err := r2.Round(ctx); err != nil {
		t.Fatal(err)
	}
	wall = wall.Add(31 * time.Second)
	if err := r2.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(written) != 1 {
		t.Errorf("the restarted runner raised the open episode again: %v", written[1:])
	}
}

// TestWindowTakeoverMidEpisode checks that a runner taking over in the
// middle of a long attack (still firing, not raised again for twenty
// minutes) neither raises it again nor misses what follows.
func TestWindowTakeoverMidEpisode(t *testing.T) {
	_, conn, db := testenv.MigratedDatabase(t)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var written []detect.Anomaly
	wall := time.Now()
	runFor := func() {
		t.Helper()
		r, err := detect.NewWindowRunner(detect.RunnerOptions{
			Windows: windowsOf(t, detect.DefaultConfig(), conn, db), Times: detect.ClickHouseTimes(conn, db),
			Now: func() time.Time { return wall },
			Write: func(ctx context.Context, as []detect.Anomaly) error {
				written = append(written, as...)
				return ingest.NewClickHouseSink(conn, db).WriteAnomalies(ctx, as)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		r.SetActive(true)
		for range 2 {
			if err := r.Round(context.Background()); err != nil {
				t.Fatal(err)
			}
			wall = wall.Add(31 * time.Second)
		}
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	store(t, conn, db, slowBruteForce(t0, "acme", "alice", 20*60))
	runFor()
	if len(written) != 1 {
		t.Fatalf("first runner raised %d anomalies, want 1", len(written))
	}
	store(t, conn, db, slowBruteForce(t0.Add(20*time.Minute), "acme", "alice", 20*60))
	store(t, conn, db, slowBruteForce(t0.Add(40*time.Minute), "acme", "bob", 60))
	runFor()
	if len(written) != 2 || written[1].UserID != "bob" {
		for _, a := range written {
			t.Logf("%s %s %s..%s", a.ID, a.UserID, a.WindowStart, a.WindowEnd)
		}
		t.Errorf("after the takeover: %d anomalies, want alice's once and then bob's", len(written))
	}
}
