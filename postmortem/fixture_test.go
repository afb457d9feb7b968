package postmortem_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/schemas"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
)

// t0 is the start of the fixture's incident.
var t0 = time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)

// fixture is a small incident, stored once per test binary:
//   - tenant acme, user u1: session s1 (family f1) from the victim's
//     browser; a benign double refresh; 20 minutes of silence; the stolen
//     refresh token replayed from another network (token_reuse
//     anomaly), the family revoked 40 ms later, then the attacker's
//     session still validated 10 s after the revocation
//     (use_after_revocation) and a second replay;
//   - tenant acme: a credential-stuffing wave from 203.0.113.50 against
//     u2…u6 that breaks into u4 (login_storm anomaly, alert only);
//   - tenant globex: u9's session s9, flagged by session_hijack, whose
//     revocation the allowlist suppressed;
//   - two dead letters; every event stored twice (a replayed batch).
type fixture struct {
	conn driver.Conn // default database: the fixture's
	db   string
}

func loadFixture(t *testing.T) fixture {
	t.Helper()
	srv, raw, db := testenv.MigratedDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cols ingest.EventColumns
	n := 0
	type client struct {
		ip, country, device, ua string
		asn                     uint32
	}
	victim := client{"198.51.100.10", "DE", "dev-victim", "Firefox/132", 3320}
	attacker := client{"203.0.113.9", "BR", "dev-attacker", "curl/8.4", 28573}
	bot := client{"203.0.113.50", "US", "", "python-requests/2.31", 14061}
	ev := func(at time.Duration, typ schemas.Type, tenant, user, session, family, token, parent string, c client, out schemas.Outcome, reason string) schemas.Event {
		n++
		e := schemas.Event{ID: fmt.Sprintf("evt_%03d", n), Type: typ, Time: t0.Add(at), Source: "auth", Tenant: tenant, UserID: user,
			SessionID: session, FamilyID: family, TokenID: token, ParentTokenID: parent, IP: c.ip, UserAgent: c.ua, DeviceID: c.device,
			Country: c.country, ASN: c.asn, Outcome: out, Reason: reason, SampleRate: 1}
		return e
	}
	add := func(e schemas.Event) { cols.Append(&e, 0, int64(n)) }
	ok, fail := schemas.OutcomeSuccess, schemas.OutcomeFailure
	// The token theft.
	add(ev(0, schemas.TypeSessionCreated, "acme", "u1", "s1", "f1", "tk1", "", victim, ok, ""))
	add(ev(10*time.Second, schemas.TypeSessionValidated, "acme", "u1", "s1", "f1", "", "", victim, ok, ""))
	add(ev(60*time.Second, schemas.TypeTokenRefreshed, "acme", "u1", "s1", "f1", "tk2", "tk1", victim, ok, ""))
	add(ev(60*time.Second+500*time.Millisecond, schemas.TypeTokenRefreshed, "acme", "u1", "s1", "f1", "tk2b", "tk2", victim, ok, ""))
	add(ev(60*time.Second+700*time.Millisecond, schemas.TypeTokenRefreshed, "acme", "u1", "s1", "f1", "tk2c", "tk2", victim, ok, ""))
	replay := 20 * time.Minute
	add(ev(replay, schemas.TypeTokenRefreshed, "acme", "u1", "s1", "f1", "tk3", "tk1", attacker, ok, ""))
	revoked := ev(replay+50*time.Millisecond, schemas.TypeSessionRevoked, "acme", "u1", "s1", "f1", "", "", client{}, schemas.OutcomeNone, "token_reuse")
	revoked.Actor = schemas.ActorVigil
	add(revoked)
	add(ev(replay+10*time.Second, schemas.TypeSessionValidated, "acme", "u1", "s1", "f1", "", "", attacker, ok, ""))
	add(ev(replay+11*time.Second, schemas.TypeTokenRefreshed, "acme", "u1", "s1", "f1", "tk4", "tk1", attacker, ok, ""))
	// The stuffing wave.
	for i, u := range []string{"u2", "u3", "u4", "u5", "u6", "u2", "u3", "u5"} {
		add(ev(5*time.Minute+time.Duration(i)*5*time.Second, schemas.TypeLoginFailed, "acme", u, "", "", "", "", bot, fail, "bad_credentials"))
	}
	add(ev(5*time.Minute+41*time.Second, schemas.TypeSessionCreated, "acme", "u4", "s4", "s4", "tk40", "", bot, ok, ""))
	// Tenant globex.
	add(ev(30*time.Minute, schemas.TypeSessionCreated, "globex", "u9", "s9", "s9", "tk90", "", victim, ok, ""))
	add(ev(31*time.Minute, schemas.TypeSessionValidated, "globex", "u9", "s9", "s9", "", "", attacker, ok, ""))

	sink := ingest.NewClickHouseSink(raw, db)
	for range 2 {
		if err := sink.WriteEvents(ctx, &cols); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.WriteDeadLetters(ctx, []ingest.DeadLetter{
		{Topic: "session-events", Partition: 0, Offset: 7, MessageTime: t0.Add(time.Minute), ReceivedAt: t0.Add(time.Minute), Reason: schemas.ReasonMalformedJSON, Detail: "unexpected end of JSON", Value: []byte(`{"id":`)},
		{Topic: "session-events", Partition: 1, Offset: 9, MessageTime: t0.Add(2 * time.Minute), ReceivedAt: t0.Add(2 * time.Minute), Reason: schemas.ReasonUnknownType, Field: "type", Detail: `"session.teleported"`, Value: []byte(`{}`)},
	}); err != nil {
		t.Fatal(err)
	}
	anomaly := func(detector, kind string, sev detect.Severity, tenant, user, session, family, ip string, first, detected, ws, we time.Duration, evidence string) detect.Anomaly {
		return detect.Anomaly{ID: "an_" + kind, Detector: detector, Kind: kind, Severity: sev, Tenant: tenant, UserID: user, SessionID: session,
			FamilyID: family, IP: ip, Evidence: evidence, FirstEventTime: t0.Add(first), DetectedAt: t0.Add(detected),
			WindowStart: t0.Add(ws), WindowEnd: t0.Add(we)}
	}
	theft := anomaly("token_reuse", "replay_other_client", detect.SeverityCritical, "acme", "u1", "s1", "f1", attacker.ip,
		replay, replay+5*time.Millisecond, time.Minute, replay, `{"event":"token.refreshed","generations_behind":2}`)
	storm := anomaly("login_storm", "credential_stuffing", detect.SeverityHigh, "acme", "", "", "", bot.ip,
		5*time.Minute, 6*time.Minute+2*time.Second, 5*time.Minute, 6*time.Minute, `{"users":5,"failures":8,"successes":1}`)
	unenforced := anomaly("use_after_revocation", "revocation_not_enforced", detect.SeverityHigh, "acme", "u1", "s1", "f1", attacker.ip,
		replay+10*time.Second, replay+10*time.Second+3*time.Millisecond, replay, replay+10*time.Second, `{"after_revocation_ms":9950}`)
	hijack := anomaly("session_hijack", "concurrent_countries", detect.SeverityHigh, "globex", "u9", "s9", "s9", attacker.ip,
		31*time.Minute, 31*time.Minute+4*time.Millisecond, 30*time.Minute, 31*time.Minute, `{"countries":["DE","BR"]}`)
	if err := sink.WriteAnomalies(ctx, []detect.Anomaly{theft, storm, unenforced, hijack}); err != nil {
		t.Fatal(err)
	}
	in := func(a detect.Anomaly, action revoke.Action, scope string) *revoke.Intent {
		return &revoke.Intent{ID: "act_" + a.Kind, Action: action, Scope: scope, Tenant: a.Tenant, UserID: a.UserID, SessionID: a.SessionID,
			FamilyID: a.FamilyID, IP: a.IP, Reason: a.Detector, AnomalyID: a.ID, Kind: a.Kind, Severity: a.Severity.String(),
			Rule: a.Detector + " -> " + string(action), FirstEventTime: a.FirstEventTime, DetectedAt: a.DetectedAt, RequestedAt: a.DetectedAt.Add(time.Millisecond)}
	}
	family, hj := in(theft, revoke.RevokeFamily, "family"), in(hijack, revoke.RevokeSession, "session")
	store := revoke.NewClickHouseStore(raw, db)
	if err := store.Write(ctx, []revoke.Record{
		{Intent: family, AttemptID: "a1", Attempt: 1, Status: revoke.StatusSent, Adapter: "http", Endpoint: "https://sessions.example/revocations", Time: t0.Add(replay + 10*time.Millisecond)},
		{Intent: family, AttemptID: "a1", Attempt: 1, Status: revoke.StatusSucceeded, Adapter: "http", Endpoint: "https://sessions.example/revocations", HTTP: 202,
			Latency: 28 * time.Millisecond, Time: t0.Add(replay + 40*time.Millisecond), TimeToRevoke: 40 * time.Millisecond},
		{Intent: hj, AttemptID: "a2", Status: revoke.StatusSuppressed, Guardrail: revoke.GuardAllowUser, Time: t0.Add(31*time.Minute + 10*time.Millisecond)},
	}); err != nil {
		t.Fatal(err)
	}
	conn, err := chschema.Open(ctx, chschema.ConnOptions{Addr: []string{srv.Addr()}, Username: "default", Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return fixture{conn: conn, db: db}
}
