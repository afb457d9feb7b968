package revoke_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/revoke/httpapi"
	"github.com/vigilhq/vigil/sim/sessionapi"
	"github.com/vigilhq/vigil/sim/truth"
)

// target is a session service's state for the API double: every subject
// exists, and a second revocation of one is "already revoked".
type target struct {
	mu      sync.Mutex
	revoked map[string]bool
}

func (t *target) Revoke(r sessionapi.Request, _ time.Time) (sessionapi.Outcome, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := r.Scope + ":" + r.SessionID + r.FamilyID + r.UserID
	if t.revoked[k] {
		return sessionapi.AlreadyRevoked, true
	}
	t.revoked[k] = true
	return sessionapi.Revoked, true
}

// api is a running session API double and what reached it.
type api struct {
	srv  *sessionapi.Server
	mu   sync.Mutex
	keys map[string]int // first-time arrivals per idempotency key
	recs []truth.Revocation
}

func startAPI(t *testing.T, cfg sessionapi.Config) *api {
	t.Helper()
	a := &api{keys: map[string]int{}}
	srv, err := sessionapi.New(cfg, &target{revoked: map[string]bool{}}, sessionapi.WithRecorder(func(r truth.Revocation) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.keys[r.ID]++
		a.recs = append(a.recs, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	a.srv = srv
	return a
}

func (a *api) arrived() (keys map[string]int, recs []truth.Revocation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for k, v := range a.keys {
		out[k] = v
	}
	return out, slices.Clone(a.recs)
}

// rig is a kfake cluster, a migrated database and a revoker under test.
type rig struct {
	brokers []string
	conn    driver.Conn
	db      string
	topic   string
	outbox  *revoke.Outbox
	rv      *revoke.Revoker

	metrics *revoke.Metrics

	mu     sync.Mutex
	raised []detect.Anomaly
}

func newRig(t *testing.T, cfg revoke.Config, adapter revoke.Adapter) *rig {
	t.Helper()
	_, brokers := testenv.Kafka(t, map[string]int{"vigil.actions": 1})
	_, conn, db := testenv.MigratedDatabase(t)
	r := &rig{brokers: brokers, conn: conn, db: db, topic: "vigil.actions", metrics: revoke.NewMetrics(nil)}
	policy, err := revoke.NewPolicy(cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	r.outbox, err = revoke.NewOutbox(revoke.OutboxOptions{Policy: policy, Brokers: brokers, Topic: r.topic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.outbox.Close() })
	r.rv = r.startRevoker(t, cfg, adapter)
	return r
}

func (r *rig) startRevoker(t *testing.T, cfg revoke.Config, adapter revoke.Adapter) *revoke.Revoker {
	t.Helper()
	if err := revoke.CheckTopic(context.Background(), r.brokers, nil, cfg.Topic); err != nil {
		t.Fatal(err)
	}
	rv, err := revoke.NewRevoker(revoke.RevokerOptions{
		Config: cfg, Brokers: r.brokers, Adapter: adapter, Store: revoke.NewClickHouseStore(r.conn, r.db), Metrics: r.metrics,
		Raise: func(_ context.Context, as []detect.Anomaly) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.raised = append(r.raised, as...)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rv.Shutdown(ctx); err != nil {
			t.Errorf("revoker shutdown: %v", err)
		}
	})
	return rv
}

// thefts returns n token-reuse anomalies on distinct families of distinct
// users, first offending events spread over the last spread.
func thefts(n int, prefix string, spread time.Duration) []detect.Anomaly {
	now := time.Now()
	out := make([]detect.Anomaly, n)
	for i := range out {
		at := now.Add(-spread + time.Duration(i)*spread/time.Duration(max(n, 1)))
		out[i] = detect.Anomaly{
			ID: fmt.Sprintf("%s-anomaly-%05d", prefix, i), Detector: "token_reuse", Kind: "replay_other_client", Severity: detect.SeverityCritical,
			Tenant: "acme", UserID: fmt.Sprintf("%s-user-%05d", prefix, i), SessionID: fmt.Sprintf("%s-ses-%05d", prefix, i),
			FamilyID: fmt.Sprintf("%s-fam-%05d", prefix, i), IP: "203.0.113.7", FirstEventTime: at, DetectedAt: at,
		}
	}
	return out
}

// statusCounts returns the number of distinct actions per final status (and guardrail).
func (r *rig) statusCounts(t *testing.T) map[string]uint64 {
	t.Helper()
	rows, err := r.conn.Query(context.Background(), "SELECT toString(status), guardrail, uniqExact(action_id) FROM "+r.db+".actions WHERE status IN ('succeeded', 'failed', 'dry_run', 'suppressed') GROUP BY status, guardrail")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var s, g string
		var n uint64
		if err := rows.Scan(&s, &g, &n); err != nil {
			t.Fatal(err)
		}
		if g != "" {
			s += "/" + g
		}
		out[s] = n
	}
	return out
}

func count(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func fastConfig() revoke.Config {
	c := revoke.DefaultConfig()
	c.RetryInitial, c.RetryMax = 20*time.Millisecond, 300*time.Millisecond
	c.BreakerOpen = 200 * time.Millisecond
	c.Deadline = 3 * time.Minute
	c.RateLimit, c.RateBurst = 10000, 10000
	c.MaxActions = 100000
	c.Adapter = revoke.AdapterConfig{Kind: revoke.AdapterHTTP, AllowHTTP: true, Timeout: 500 * time.Millisecond}
	return c
}

// httpAdapter points c at the API double and returns the adapter for it.
func httpAdapter(t *testing.T, c *revoke.Config, a *api) revoke.Adapter {
	t.Helper()
	c.Adapter.URL = "http://" + a.srv.Addr()
	client, err := revoke.NewHTTPClient(c.Adapter, c.Concurrency)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := httpapi.New(c.Adapter, client)
	if err != nil {
		t.Fatal(err)
	}
	return ad
}

// TestRevocationsUnderFaults is acceptance point 2: with the session API
// failing 30% of calls, holding 10% of answers past the client timeout
// (after applying them) and throttling with Retry-After, every revocation
// arrives exactly once per idempotency key and is recorded once as
// succeeded.
func TestRevocationsUnderFaults(t *testing.T) {
	apiCfg := sessionapi.DefaultConfig()
	apiCfg.ErrorRate, apiCfg.TimeoutRate, apiCfg.ThrottleRate = 0.3, 0.1, 0.1
	apiCfg.TimeoutDelay, apiCfg.RetryAfter, apiCfg.Seed = 2*time.Second, time.Second, 11
	a := startAPI(t, apiCfg)
	cfg := fastConfig()
	r := newRig(t, cfg, httpAdapter(t, &cfg, a))

	const n = 200
	as := thefts(n, "fault", time.Minute)
	// Produce in a few batches, one of them twice (a replayed ingest batch).
	for i := 0; i < n; i += 50 {
		if err := r.outbox.Handle(context.Background(), as[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.outbox.Handle(context.Background(), as[:50]); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "every action to succeed", func() (bool, string) {
		c := r.statusCounts(t)
		return c["succeeded"] == n, fmt.Sprint(c)
	})
	keys, _ := a.arrived()
	if len(keys) != n {
		t.Errorf("%d idempotency keys reached the service, want %d", len(keys), n)
	}
	for k, c := range keys {
		if c != 1 {
			t.Errorf("key %s applied %d times", k, c)
		}
	}
	for _, an := range as {
		id := revoke.IntentID(an.ID, revoke.ScopeFamily, an.FamilyID)
		if keys[id] != 1 {
			t.Errorf("anomaly %s: its revocation (key %s) arrived %d times", an.ID, id, keys[id])
		}
	}
	st := a.srv.Stats()
	if st.KeyConflicts != 0 || st.InjectedErrors == 0 || st.TimedOut == 0 || st.Throttled == 0 || st.Replayed == 0 {
		t.Errorf("service stats %+v: want faults of every kind, replays after timeouts, no key conflicts", st)
	}
	if n := count(t, r.conn, "SELECT count() FROM (SELECT action_id, countIf(status = 'succeeded') AS s FROM "+r.db+".actions FINAL GROUP BY action_id HAVING s != 1)"); n != 0 {
		t.Errorf("%d actions are not recorded exactly once as succeeded", n)
	}
	if n := count(t, r.conn, "SELECT count() FROM "+r.db+".actions WHERE status = 'retrying' AND (http_status IN (429, 503) OR error LIKE '%timed out%' OR error LIKE '%deadline exceeded%')"); n == 0 {
		t.Error("no retrying rows for the injected faults")
	}
	if n := count(t, r.conn, "SELECT count() FROM "+r.db+".actions WHERE status = 'succeeded' AND (time_to_revoke_ms <= 0 OR latency_ms <= 0 OR http_status NOT IN (201, 409))"); n != 0 {
		t.Errorf("%d succeeded rows lack a time to revoke, a latency or the 201/409 status", n)
	}
}

// TestDryRunSendsNothing: dry-run records dry_run for every action and the
// session API sees no request.
func TestDryRunSendsNothing(t *testing.T) {
	a := startAPI(t, sessionapi.DefaultConfig())
	cfg := fastConfig()
	cfg.DryRun = true
	r := newRig(t, cfg, httpAdapter(t, &cfg, a))
	if err := r.outbox.Handle(context.Background(), thefts(20, "dry", time.Minute)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "20 dry_run rows", func() (bool, string) {
		c := r.statusCounts(t)
		return c["dry_run"] == 20, fmt.Sprint(c)
	})
	if st := a.srv.Stats(); st.Received != 0 {
		t.Errorf("the session API received %d requests in dry-run", st.Received)
	}
	if n := count(t, r.conn, "SELECT count() FROM "+r.db+".actions WHERE status IN ('sent', 'succeeded')"); n != 0 {
		t.Errorf("%d sent or succeeded rows in dry-run", n)
	}
}

// TestAllowlistedUserNeverRevoked: the allowlisted user's action is
// suppressed with its guardrail; the others go through.
func TestAllowlistedUserNeverRevoked(t *testing.T) {
	a := startAPI(t, sessionapi.DefaultConfig())
	cfg := fastConfig()
	as := thefts(10, "allow", time.Minute)
	cfg.AllowUsers = []string{as[3].UserID}
	cfg.AllowCIDRs = []string{"198.51.100.0/24"}
	as[5].IP = "198.51.100.20"
	r := newRig(t, cfg, httpAdapter(t, &cfg, a))
	if err := r.outbox.Handle(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "10 final rows", func() (bool, string) {
		c := r.statusCounts(t)
		return c["succeeded"] == 8 && c["suppressed/allowlist_user"] == 1 && c["suppressed/allowlist_cidr"] == 1, fmt.Sprint(c)
	})
	_, recs := a.arrived()
	for _, rec := range recs {
		if rec.UserID == as[3].UserID || rec.FamilyID == as[5].FamilyID {
			t.Errorf("an allowlisted subject was revoked: %+v", rec)
		}
	}
}

// TestBlastRadiusCapHalts is acceptance point 3: a storm of 10,000 reuse
// anomalies in a minute trips the cap, nothing is revoked past it, and one
// revocation_halted anomaly is raised; the halt survives a restart.
func TestBlastRadiusCapHalts(t *testing.T) {
	a := startAPI(t, sessionapi.DefaultConfig())
	cfg := fastConfig()
	cfg.MaxActions, cfg.CapWindow, cfg.HaltFor = 100, 10*time.Minute, time.Hour
	cfg.RateLimit, cfg.RateBurst = 1000, 100
	r := newRig(t, cfg, httpAdapter(t, &cfg, a))
	const n = 10000
	as := thefts(n, "storm", time.Minute)
	for i := 0; i < n; i += 1000 {
		if err := r.outbox.Handle(context.Background(), as[i:i+1000]); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 2*time.Minute, "every action to end", func() (bool, string) {
		c := r.statusCounts(t)
		total := uint64(0)
		for _, v := range c {
			total += v
		}
		return total == n, fmt.Sprint(c)
	})
	c := r.statusCounts(t)
	if c["succeeded"] != 100 || c["suppressed/blast_radius"] != 1 || c["suppressed/halted"] != n-101 {
		t.Errorf("final statuses %v: want 100 succeeded, 1 blast_radius, %d halted", c, n-101)
	}
	if st := a.srv.Stats(); st.Revoked != 100 {
		t.Errorf("the session API revoked %d subjects, want the cap of 100", st.Revoked)
	}
	r.mu.Lock()
	raised := slices.Clone(r.raised)
	r.mu.Unlock()
	if len(raised) != 1 || raised[0].Kind != revoke.KindRevocationHalted || raised[0].Severity != detect.SeverityCritical || !strings.Contains(raised[0].Evidence, `"max_actions":100`) {
		t.Errorf("raised %+v, want one critical revocation_halted", raised)
	}

	// A new revoker (a restart) reads the halt back and keeps suppressing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.rv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r.rv = r.startRevoker(t, cfg, httpAdapter(t, &cfg, a))
	if err := r.outbox.Handle(context.Background(), thefts(1, "after", time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "the action after the restart to be suppressed", func() (bool, string) {
		c := r.statusCounts(t)
		return c["suppressed/halted"] == n-100, fmt.Sprint(c)
	})
	if st := a.srv.Stats(); st.Revoked != 100 {
		t.Errorf("after the restart the session API revoked %d subjects, want still 100", st.Revoked)
	}

	// An operator resumes (vigil revoke resume): the running revoker ends the
	// halt and the cap counts afresh.
	store := revoke.NewClickHouseStore(r.conn, r.db)
	if err := store.RecordResume(context.Background(), "test: reviewed", "tester", time.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the halt to end", func() (bool, string) {
		until := r.rv.Guard().Halted(time.Now())
		return until.IsZero(), fmt.Sprint("halted until ", until)
	})
	if err := r.outbox.Handle(context.Background(), thefts(1, "resumed", time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "the action after the resume to succeed", func() (bool, string) {
		c := r.statusCounts(t)
		return c["succeeded"] == 101, fmt.Sprint(c)
	})
	if h, err := store.Halt(context.Background(), cfg, time.Now()); err != nil || !h.Until.IsZero() || h.ResumedAt.IsZero() {
		t.Errorf("Halt after the resume: %+v, %v", h, err)
	}
}

// TestPermanentFailureIsAlerted: a 4xx other than 404/409 fails the action
// at once, records it failed and raises revocation_failed.
func TestPermanentFailureIsAlerted(t *testing.T) {
	apiCfg := sessionapi.DefaultConfig()
	apiCfg.BearerToken = "right-token" // the adapter sends none: 401
	a := startAPI(t, apiCfg)
	cfg := fastConfig()
	r := newRig(t, cfg, httpAdapter(t, &cfg, a))
	if err := r.outbox.Handle(context.Background(), thefts(1, "perm", time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "a failed row", func() (bool, string) {
		c := r.statusCounts(t)
		return c["failed"] == 1, fmt.Sprint(c)
	})
	if n := count(t, r.conn, "SELECT count() FROM "+r.db+".actions WHERE status = 'failed' AND http_status = 401 AND error LIKE '%refused%HTTP 401%'"); n != 1 {
		t.Errorf("failed row lacks the status or the reason")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.raised) != 1 || r.raised[0].Kind != revoke.KindRevocationFailed {
		t.Errorf("raised %+v, want one revocation_failed", r.raised)
	}
}

// TestDeadlineFailsBehindOpenCircuit: an API that only fails opens the
// circuit breaker (calls stop hammering it), and past the deadline the
// action is recorded failed and revocation_failed is raised — never
// silently dropped.
func TestDeadlineFailsBehindOpenCircuit(t *testing.T) {
	apiCfg := sessionapi.DefaultConfig()
	apiCfg.ErrorRate = 1
	a := startAPI(t, apiCfg)
	cfg := fastConfig()
	cfg.Deadline, cfg.BreakerFailures, cfg.BreakerOpen = 3*time.Second, 3, time.Second
	r := newRig(t, cfg, httpAdapter(t, &cfg, a))
	if err := r.outbox.Handle(context.Background(), thefts(1, "deadline", time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "a failed row", func() (bool, string) {
		c := r.statusCounts(t)
		return c["failed"] == 1, fmt.Sprint(c)
	})
	if n := count(t, r.conn, "SELECT count() FROM "+r.db+".actions WHERE status = 'failed' AND error LIKE 'deadline 3s passed after % attempts: %HTTP 503%'"); n != 1 {
		t.Error("the failed row does not say the deadline passed and the last error")
	}
	ep := "http://" + a.srv.Addr()
	open := testutil.ToFloat64(r.metrics.Attempts.WithLabelValues(ep, "circuit_open"))
	retries := testutil.ToFloat64(r.metrics.Attempts.WithLabelValues(ep, "retry"))
	if open == 0 || retries < 3 {
		t.Errorf("attempts: %g retried, %g refused by the open circuit; want ≥ 3 and > 0", retries, open)
	}
	if got := a.srv.Stats().Received; float64(got) != retries {
		t.Errorf("the API received %d calls, the revoker counted %g: an open circuit must not call it", got, retries)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.raised) != 1 || r.raised[0].Kind != revoke.KindRevocationFailed || r.raised[0].Severity != detect.SeverityHigh {
		t.Errorf("raised %+v, want one revocation_failed", r.raised)
	}
}
