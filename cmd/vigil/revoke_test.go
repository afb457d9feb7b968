package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/score"
	"github.com/vigilhq/vigil/sim/sessionapi"
	"github.com/vigilhq/vigil/sim/truth"
)

// freeAddr returns a loopback host:port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRevocationClosedLoop is acceptance point 1: `vigil run` revokes every
// token_theft_replay family at the simulator's API while `vigil simulate`
// runs, the attacker's next use is refused, and the scorecard shows the
// time to revoke and no false-positive revocation.
func TestRevocationClosedLoop(t *testing.T) {
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 3, "vigil.dlq": 1, "vigil.actions": 1})
	srv, conn, db := testenv.MigratedDatabase(t)
	apiAddr := freeAddr(t)
	vigil := startVigil(t, []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
		"VIGIL_INGEST_FLUSH_INTERVAL=100ms",
		"VIGIL_REVOKE_ADAPTER_KIND=http",
		"VIGIL_REVOKE_ADAPTER_URL=http://" + apiAddr,
		"VIGIL_REVOKE_ADAPTER_ALLOW_HTTP=true",
	})
	testenv.WaitFor(t, time.Minute, "vigil ready (ingest and revoker)", func() (bool, string) {
		code, body := vigil.get("/readyz")
		return code == http.StatusOK, body
	})
	produceInvalid(t, brokers) // for the dashboards' dead-letter panels below
	truthPath := filepath.Join(t.TempDir(), "truth.jsonl")
	out, _, err := run(t, nil, "simulate", "--brokers", strings.Join(brokers, ","), "--users", "2000", "--rate", "1500",
		"--duration", "100s", "--speedup", "4", "--flat", "--scenario", "token_theft_replay,concurrent_hijack", "--seed", "3",
		"--truth", truthPath, "--api-listen", apiAddr, "--linger", "3s", "--progress", "0")
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	// After ingest, detection and revocation of real traffic, no metric
	// label carries a user, session, family, token or address.
	_, metrics := vigil.get("/metrics")
	checkMetricLabels(t, metrics)
	vigil.terminate(t, 30*time.Second)

	env := map[string]string{"VIGIL_CLICKHOUSE_ADDR": srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE": db}
	out, _, err = run(t, env, "score", "--truth", truthPath, "--json")
	var rep score.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("score --json: %v\n%s", err, out)
	}
	thefts := 0
	for _, r := range rep.Rows {
		if r.Scenario != "token_theft_replay" {
			continue
		}
		thefts = r.Instances
		if r.Revoked == nil || *r.Revoked != r.Instances || r.Instances == 0 {
			t.Errorf("token_theft_replay: revoked %v of %d instances", r.Revoked, r.Instances)
		}
		if r.TimeToRevoke == nil {
			t.Error("token_theft_replay: no time to revoke on the scorecard")
		}
	}
	if thefts == 0 {
		t.Fatalf("no token_theft_replay row:\n%s", out)
	}
	if rep.Totals.FalsePositiveRevocations != 0 {
		t.Errorf("%d false-positive revocations", rep.Totals.FalsePositiveRevocations)
	}

	// The attacker's next use after the revocation was refused: for each
	// theft, after the service's session.revoked (actor vigil) the
	// attacker's address has no successful event and at least one refusal.
	f, err := openTruth(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range f.Scenarios {
		if sc.Scenario != "token_theft_replay" || len(sc.FamilyIDs) == 0 || len(sc.IPs) == 0 {
			continue
		}
		fam, ip := sc.FamilyIDs[0], sc.IPs[0]
		q := fmt.Sprintf(`SELECT (SELECT min(time_ns) FROM %[3]s.events WHERE family_id = '%[1]s' AND type = 'session.revoked' AND actor = 'vigil') AS rev,
  countIf(ip = '%[2]s' AND outcome = 'success' AND time_ns > rev) AS ok_after,
  countIf(ip = '%[2]s' AND reason = 'revoked') AS refused
FROM %[3]s.events FINAL WHERE family_id = '%[1]s'`, fam, ip, db)
		var rev int64
		var okAfter, refused uint64
		if err := conn.QueryRow(context.Background(), q).Scan(&rev, &okAfter, &refused); err != nil {
			t.Fatal(err)
		}
		if rev == 0 || okAfter != 0 || refused == 0 {
			t.Errorf("family %s: revoked at %d, %d attacker successes after, %d refusals; want a revocation, none, some", fam, rev, okAfter, refused)
		}
	}
	if n := count(t, conn, "SELECT count() FROM (SELECT action_id, countIf(status = 'succeeded') AS s FROM "+db+".actions FINAL GROUP BY action_id HAVING s != 1)"); n != 0 {
		t.Errorf("%d actions not recorded exactly once as succeeded", n)
	}
	theft := ""
	for _, sc := range f.Scenarios {
		if sc.Scenario == "token_theft_replay" && len(sc.FamilyIDs) > 0 {
			theft = sc.FamilyIDs[0]
			break
		}
	}
	if theft == "" {
		t.Fatal("no token_theft_replay family in the truth file: the dashboards cannot be checked")
	}
	t.Run("dashboards", func(t *testing.T) { checkDashboardQueries(t, srv, db, theft) })
	t.Run("incident", func(t *testing.T) {
		checkIncident(t, map[string]string{"VIGIL_CLICKHOUSE_ADDR": srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE": db}, conn, db,
			"Token theft: a rotated refresh token replayed from another client starts", "first revocation: revoke_family family fam_",
			"Session hijack", "revoke_session")
	})
}

func openTruth(path string) (truth.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return truth.File{}, err
	}
	return truth.Read(bytes.NewReader(b))
}

// heldAPI is the session API double behind a gate: the first request is
// read in full, reported on arrived, and held until release is closed;
// then it is processed as if the client were still there.
type heldAPI struct {
	api     *sessionapi.Server
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	keys    map[string]int
}

func (h *heldAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	first := false
	h.once.Do(func() { first = true })
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	if first {
		close(h.arrived)
		<-h.release
		h.api.Handler().ServeHTTP(httptest.NewRecorder(), req) // the client is gone; the service applies it anyway
		return
	}
	h.api.Handler().ServeHTTP(w, req)
}

// TestRevocationSurvivesKill9 is acceptance point 2's crash: the revoker
// is killed (-9) after sending a revocation and before recording it; the
// service applies it; after a restart it arrives again under the same key
// (answered from the idempotency store) and is recorded once as succeeded.
func TestRevocationSurvivesKill9(t *testing.T) {
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 1, "vigil.dlq": 1, "vigil.actions": 1})
	srv, conn, db := testenv.MigratedDatabase(t)
	h := &heldAPI{arrived: make(chan struct{}), release: make(chan struct{}), keys: map[string]int{}}
	api, err := sessionapi.New(sessionapi.DefaultConfig(), targetFunc(func(sessionapi.Request) sessionapi.Outcome { return sessionapi.Revoked }),
		sessionapi.WithRecorder(func(r truth.Revocation) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.keys[r.ID]++
		}))
	if err != nil {
		t.Fatal(err)
	}
	h.api = api
	hs := httptest.NewServer(h)
	defer hs.Close()

	env := []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
		"VIGIL_INGEST_FLUSH_INTERVAL=50ms",
		"VIGIL_KAFKA_SESSION_TIMEOUT=6s",
		"VIGIL_INGEST_DRAIN_TIMEOUT=3s",
		"VIGIL_KAFKA_HEARTBEAT_INTERVAL=500ms",
		"VIGIL_REVOKE_ADAPTER_KIND=http",
		"VIGIL_REVOKE_ADAPTER_URL=" + hs.URL,
		"VIGIL_REVOKE_ADAPTER_ALLOW_HTTP=true",
		"VIGIL_REVOKE_ADAPTER_TIMEOUT=1m",
	}
	first := startVigil(t, env)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("session-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, recs := theftRecords(time.Now().UTC().Add(-time.Minute))
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.arrived:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no revocation reached the API\n%s", first.out.String())
	}
	// Kill once the attempt's sent row is durable: the restarted revoker
	// then knows the action started, and must finish it, not stop it as a
	// repeat of itself (cool-down) or count it twice against the cap.
	testenv.WaitFor(t, 30*time.Second, "the attempt's sent row", func() (bool, string) {
		n := count(t, conn, "SELECT count() FROM "+db+".actions WHERE status = 'sent'")
		return n >= 1, fmt.Sprintf("%d sent rows", n)
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.exited = true
	close(h.release) // the service applies the revocation the dead revoker never heard back about
	if n := count(t, conn, "SELECT count() FROM "+db+".actions WHERE status = 'succeeded'"); n != 0 {
		t.Fatalf("%d succeeded rows before the restart", n)
	}

	second := startVigil(t, env)
	testenv.WaitFor(t, 2*time.Minute, "the revocation recorded as succeeded", func() (bool, string) {
		n := count(t, conn, "SELECT count() FROM "+db+".actions WHERE status = 'succeeded'")
		return n >= 1, fmt.Sprintf("%d succeeded rows", n)
	})
	second.terminate(t, 30*time.Second)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.keys) != 1 {
		t.Fatalf("%d idempotency keys applied, want 1: %v", len(h.keys), h.keys)
	}
	var key string
	for k, n := range h.keys {
		key = k
		if n != 1 {
			t.Errorf("key %s applied %d times", k, n)
		}
	}
	if st := api.Stats(); st.Replayed < 1 || st.Revoked != 1 {
		t.Errorf("service stats %+v: want the resend answered from the idempotency store", st)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".actions FINAL WHERE status = 'succeeded' AND action_id = '"+key+"'"); n != 1 {
		t.Errorf("%d succeeded rows for %s, want 1", n, key)
	}
}

type targetFunc func(sessionapi.Request) sessionapi.Outcome

func (f targetFunc) Revoke(r sessionapi.Request, _ time.Time) (sessionapi.Outcome, bool) {
	return f(r), true
}

// TestRevokeStatusAndResume: `vigil revoke status` reports a tripped cap
// as HALTED with the action that tripped it; `vigil revoke resume` needs a
// reason, records who resumed, and status then says vigil is acting.
func TestRevokeStatusAndResume(t *testing.T) {
	srv, conn, db := testenv.MigratedDatabase(t)
	env := map[string]string{"VIGIL_CLICKHOUSE_ADDR": srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE": db}
	out, _, err := run(t, env, "revoke", "status")
	if err != nil || !strings.Contains(out, "acting (the blast-radius cap has not tripped") {
		t.Fatalf("status of a fresh database: %v\n%s", err, out)
	}
	store := revoke.NewClickHouseStore(conn, db)
	in := &revoke.Intent{ID: "trip-1", Action: revoke.RevokeFamily, Scope: revoke.ScopeFamily, Tenant: "t", FamilyID: "f", RequestedAt: time.Now()}
	recs := []revoke.Record{
		{Intent: in, AttemptID: "a1", Status: revoke.StatusSuppressed, Guardrail: revoke.GuardBlastRadius, Time: time.Now()},
		{Intent: &revoke.Intent{ID: "x-2", Action: revoke.RevokeFamily, Scope: revoke.ScopeFamily, FamilyID: "g"}, AttemptID: "a2", Status: revoke.StatusSuppressed, Guardrail: revoke.GuardHalted, Time: time.Now()},
	}
	if err := store.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, env, "revoke", "status")
	if err != nil || !strings.Contains(out, "HALTED since") || !strings.Contains(out, "tripped by action trip-1") || !strings.Contains(out, "suppressed  halted") {
		t.Errorf("status after a trip: %v\n%s", err, out)
	}
	if _, _, err := run(t, env, "revoke", "resume"); exitCode(err) != 2 || !strings.Contains(err.Error(), "--reason") {
		t.Errorf("resume without --reason: %v, want a usage error naming --reason", err)
	}
	out, _, err = run(t, env, "revoke", "resume", "--reason", "INC-1: reviewed")
	if err != nil || !strings.Contains(out, "resumed at") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	out, _, err = run(t, env, "revoke", "status")
	if err != nil || !strings.Contains(out, "acting (the cap tripped at") {
		t.Errorf("status after the resume: %v\n%s", err, out)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".actions WHERE status = 'resumed' AND reason = 'INC-1: reviewed' AND note LIKE 'resumed by %'"); n != 1 {
		t.Errorf("%d resume rows with the reason and the user", n)
	}
}

// theftRecords returns a token theft around now (testenv.TokenTheft: the
// login, the rotation and the replay) and its events as records keyed by
// family, in that order.
func theftRecords(now time.Time) ([3]schemas.Event, []*kgo.Record) {
	created, rotation, replay := testenv.TokenTheft(now)
	evs := [3]schemas.Event{created, rotation, replay}
	var recs []*kgo.Record
	for _, e := range evs {
		recs = append(recs, &kgo.Record{Key: []byte(e.FamilyID), Value: schemas.AppendJSON(nil, &e)})
	}
	return evs, recs
}
