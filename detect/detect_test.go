package detect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/schemas"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// cl is a client: where an event comes from.
type cl struct {
	ip      string
	asn     uint32
	country string
	ua      string
	device  string
}

const (
	chrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	chrome2 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36"
	app     = "ExampleApp/7.4.1 (Android 14; SM-S921B)"
)

var (
	home      = cl{"84.150.3.7", 3320, "DE", chrome, "dev-laptop"}
	homeV6    = cl{"2001:db8:5496:1::7", 3320, "DE", chrome, "dev-laptop"}
	attacker  = cl{"167.99.10.20", 14061, "US", "python-requests/2.32.3", ""}
	abroad    = cl{"98.200.4.4", 7922, "US", chrome, "dev-other"}
	phoneWifi = cl{"84.150.9.9", 3320, "DE", app, "dev-phone"}
	phoneCell = cl{"91.40.77.1", 6805, "DE", app, "dev-phone"}
	otherDE   = cl{"91.40.12.3", 6805, "DE", chrome, "dev-stranger"}
	inFrance  = cl{"90.10.4.4", 3215, "FR", chrome, "dev-laptop"}
	office    = cl{"84.150.3.99", 3320, "DE", chrome2, "dev-laptop"}
)

// ev is an event of family fam at t0+at from client c.
func ev(typ schemas.Type, at time.Duration, c cl) schemas.Event {
	return schemas.Event{
		ID: fmt.Sprintf("e-%d-%d", typ, at), Type: typ, Time: t0.Add(at), Tenant: "acme", UserID: "u1",
		SessionID: "s1", FamilyID: "f1", IP: c.ip, ASN: c.asn, Country: c.country, UserAgent: c.ua, DeviceID: c.device,
		SampleRate: 1,
	}
}

func created(at time.Duration, c cl) schemas.Event {
	e := ev(schemas.TypeSessionCreated, at, c)
	e.Outcome, e.TokenID = schemas.OutcomeSuccess, "rt0"
	return e
}

func refreshed(at time.Duration, parent, token string, c cl) schemas.Event {
	e := ev(schemas.TypeTokenRefreshed, at, c)
	e.ParentTokenID, e.TokenID = parent, token
	return e
}

func refreshFailed(at time.Duration, token, reason string, c cl) schemas.Event {
	e := ev(schemas.TypeTokenRefreshFailed, at, c)
	e.TokenID, e.Reason = token, reason
	return e
}

func validated(at time.Duration, c cl) schemas.Event {
	e := ev(schemas.TypeSessionValidated, at, c)
	e.Outcome = schemas.OutcomeSuccess
	return e
}

func validationFailed(at time.Duration, c cl) schemas.Event {
	e := ev(schemas.TypeSessionValidated, at, c)
	e.Outcome, e.Reason = schemas.OutcomeFailure, "revoked"
	return e
}

func revoked(at time.Duration) schemas.Event {
	e := ev(schemas.TypeSessionRevoked, at, cl{})
	e.Actor, e.Reason = schemas.ActorAdmin, "privilege_change"
	return e
}

// judge runs events through a fresh partition and returns the anomalies
// as "detector/kind/severity@event index".
func judge(t *testing.T, cfg detect.Config, evs ...schemas.Event) ([]string, []detect.Anomaly, *detect.Metrics) {
	t.Helper()
	m := detect.NewMetrics(nil)
	reg, err := detect.NewRegistry(cfg, detect.RegistryOptions{Metrics: m, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	p := reg.Partition(0)
	var got []string
	var all []detect.Anomaly
	for i := range evs {
		n := len(all)
		all = p.Observe(&evs[i], int64(i), all)
		for _, a := range all[n:] {
			got = append(got, fmt.Sprintf("%s/%s/%s@%d", a.Detector, a.Kind, a.Severity, i))
			if !json.Valid([]byte(a.Evidence)) {
				t.Errorf("evidence is not JSON: %s", a.Evidence)
			}
		}
	}
	return got, all, m
}

type judgeCase struct {
	name string
	cfg  func(*detect.Config)
	evs  []schemas.Event
	want []string
}

func runCases(t *testing.T, cases []judgeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := detect.DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			got, all, _ := judge(t, cfg, tc.evs...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("anomalies = %q, want %q", got, tc.want)
				for _, a := range all {
					t.Logf("%s %s", a.Kind, a.Evidence)
				}
			}
		})
	}
}

const (
	s  = time.Second
	ms = time.Millisecond
	mi = time.Minute
)

func TestTokenReuse(t *testing.T) {
	rotation := []schemas.Event{created(0, home), refreshed(5*mi, "rt0", "rt1", home)}
	with := func(evs ...schemas.Event) []schemas.Event { return append(slices.Clone(rotation), evs...) }
	runCases(t, []judgeCase{
		{name: "rotation alone", evs: with(validated(6*mi, home), refreshed(10*mi, "rt1", "rt2", home))},
		{name: "replay from another client", evs: with(refreshed(5*mi+2*s, "rt0", "rtX", attacker)),
			want: []string{"token_reuse/replay_other_client/critical@2"}},
		{name: "replay from another client inside the leeway", evs: with(refreshed(5*mi+20*ms, "rt0", "rtX", attacker)),
			want: []string{"token_reuse/replay_other_client/critical@2"}},
		{name: "same-client race inside the leeway", evs: with(refreshed(5*mi+20*ms, "rt0", "rt1b", home))},
		{name: "same-client retry at the leeway's edge", evs: with(refreshed(5*mi+3*s, "rt0", "rt1b", home))},
		{name: "same client after the leeway", evs: with(refreshed(5*mi+4*s, "rt0", "rt1b", home)),
			want: []string{"token_reuse/replay_after_leeway/critical@2"}},
		{name: "same client on its IPv6 address is another network", evs: with(refreshed(5*mi+s, "rt0", "rt1b", homeV6)),
			want: []string{"token_reuse/replay_other_client/critical@2"}},
		{name: "zero leeway, like Auth0's default", cfg: func(c *detect.Config) { c.TokenReuse.Leeway = 0 },
			evs: with(refreshed(5*mi+20*ms, "rt0", "rt1b", home)), want: []string{"token_reuse/replay_after_leeway/critical@2"}},
		{name: "older generation from the same client, inside the leeway",
			evs:  with(refreshed(5*mi+100*ms, "rt1", "rt2", home), refreshed(5*mi+200*ms, "rt2", "rt3", home), refreshed(5*mi+300*ms, "rt1", "rtX", home)),
			want: []string{"token_reuse/replay_older_generation/critical@4"}},
		{name: "older generation reported by the service", evs: with(refreshed(10*mi, "rt1", "rt2", home), refreshFailed(10*mi+s, "rt0", "reused", attacker)),
			want: []string{"token_reuse/replay_older_generation/critical@3"}},
		{name: "reuse reported for a token vigil never saw exchanged", evs: with(refreshFailed(6*mi, "rt-unknown", "reused", attacker)),
			want: []string{"token_reuse/replay_reported/critical@2"}},
		{name: "reuse reported for the same client's race", evs: with(refreshFailed(5*mi+30*ms, "rt0", "reused", home))},
		{name: "other failures are not reuse", evs: with(refreshFailed(6*mi, "rt0", "expired", attacker), refreshFailed(6*mi, "rt0", "revoked", attacker))},
		{name: "a second replay inside realert_after is not raised again",
			evs:  with(refreshed(6*mi, "rt0", "rtX", attacker), refreshFailed(7*mi, "rt0", "reused", attacker), refreshed(17*mi, "rt0", "rtY", attacker)),
			want: []string{"token_reuse/replay_other_client/critical@2", "token_reuse/replay_other_client/critical@4"}},
		{name: "the same token id in another tenant's family is another family",
			evs: with(func() schemas.Event { e := refreshed(6*mi, "rt0", "rtX", attacker); e.Tenant = "globex"; return e }())},
		{name: "disabled: the hijack detector still sees the second client", cfg: func(c *detect.Config) { c.TokenReuse.Enabled = false },
			evs: with(refreshed(6*mi, "rt0", "rtX", attacker)), want: []string{"session_hijack/impossible_travel/high@2"}},
	})
}

func TestSessionHijack(t *testing.T) {
	runCases(t, []judgeCase{
		{name: "another country and ASN, concurrently", evs: []schemas.Event{created(0, home), validated(30*s, attacker)},
			want: []string{"session_hijack/impossible_travel/high@1"}},
		{name: "the owner keeps going: raised once", evs: []schemas.Event{created(0, home), validated(30*s, abroad), validated(31*s, home), validated(32*s, abroad)},
			want: []string{"session_hijack/impossible_travel/high@1"}},
		{name: "a phone leaving wifi for its carrier", evs: []schemas.Event{created(0, phoneWifi), validated(20*s, phoneCell), refreshed(40*s, "rt0", "rt1", phoneCell), validated(60*s, phoneWifi)}},
		{name: "another device on another network in the same country", evs: []schemas.Event{created(0, home), validated(10*s, otherDE)},
			want: []string{"session_hijack/concurrent_clients/medium@1"}},
		{name: "a browser update on the same network", evs: []schemas.Event{created(0, home), validated(10*s, office)}},
		{name: "another country after the window", evs: []schemas.Event{created(0, home), validated(11*mi, attacker)}},
		{name: "a plausible trip", cfg: func(c *detect.Config) { c.SessionHijack.Window = 24 * time.Hour },
			evs: []schemas.Event{created(0, home), validated(5*time.Hour, inFrance)}, want: []string{"session_hijack/concurrent_countries/medium@1"}},
		{name: "a failed use does not count", evs: []schemas.Event{created(0, home), validationFailed(30*s, attacker)}},
		{name: "events without a client do not count", evs: []schemas.Event{created(0, home), validated(10*s, cl{}), validated(20*s, home)}},
		{name: "explained by a replay", evs: []schemas.Event{created(0, home), refreshed(5*mi, "rt0", "rt1", home), refreshed(5*mi+s, "rt0", "rtX", attacker), validated(5*mi+2*s, attacker), validated(5*mi+3*s, home)},
			want: []string{"token_reuse/replay_other_client/critical@2"}},
	})
}

func TestUseAfterRevocation(t *testing.T) {
	runCases(t, []judgeCase{
		{name: "validated inside the grace", evs: []schemas.Event{created(0, home), revoked(mi), validated(mi+3*s, home)}},
		{name: "validated past the grace, raised once",
			evs:  []schemas.Event{created(0, home), revoked(mi), validated(mi+3*s, home), validated(mi+6*s, home), validated(mi+7*s, home), refreshed(mi+8*s, "rt0", "rt1", home)},
			want: []string{"use_after_revocation/revocation_not_enforced/high@3"}},
		{name: "refreshed past the grace", evs: []schemas.Event{created(0, home), revoked(mi), refreshed(mi+10*s, "rt0", "rt1", home)},
			want: []string{"use_after_revocation/revocation_not_enforced/high@2"}},
		{name: "refused after the revocation", evs: []schemas.Event{created(0, home), revoked(mi), validationFailed(mi+10*s, home), refreshFailed(mi+11*s, "rt0", "revoked", home)}},
		{name: "zero grace", cfg: func(c *detect.Config) { c.UseAfterRevocation.Grace = 0 },
			evs: []schemas.Event{created(0, home), revoked(mi), validated(mi+ms, home)}, want: []string{"use_after_revocation/revocation_not_enforced/high@2"}},
		{name: "before the revocation", evs: []schemas.Event{created(0, home), validated(mi, home), revoked(2 * mi)}},
	})
}

func TestShadowAndIDs(t *testing.T) {
	cfg := detect.DefaultConfig()
	cfg.TokenReuse.Shadow = true
	evs := []schemas.Event{created(0, home), refreshed(5*mi, "rt0", "rt1", home), refreshed(6*mi, "rt0", "rtX", attacker), revoked(7 * mi), validated(8*mi, home)}
	_, as1, m := judge(t, cfg, evs...)
	_, as2, _ := judge(t, cfg, evs...)
	if len(as1) != 2 || !as1[0].Shadow || as1[1].Shadow {
		t.Fatalf("want a shadow token_reuse and a live use_after_revocation anomaly, got %+v", as1)
	}
	for i := range as1 {
		if as1[i].ID != as2[i].ID || len(as1[i].ID) != 32 {
			t.Errorf("ids %q and %q of the same finding differ or are not 32 hex digits", as1[i].ID, as2[i].ID)
		}
	}
	a := as1[0]
	if a.Tenant != "acme" || a.FamilyID != "f1" || a.SessionID != "s1" || a.UserID != "u1" || a.IP != attacker.ip ||
		!a.FirstEventTime.Equal(evs[2].Time) || !a.WindowStart.Equal(evs[1].Time) || a.Offset != 2 {
		t.Errorf("anomaly subject or times wrong: %+v", a)
	}
	if strings.Contains(a.Evidence, "rt0") || strings.Contains(a.Evidence, "rtX") {
		t.Errorf("evidence carries token ids: %s", a.Evidence)
	}
	if got := testutil.ToFloat64(m.Anomalies.WithLabelValues("token_reuse", "replay_other_client", "critical", "true")); got != 1 {
		t.Errorf("anomalies metric = %g, want 1", got)
	}
}

func TestBenignRaceIsCounted(t *testing.T) {
	_, as, m := judge(t, detect.DefaultConfig(), created(0, home), refreshed(5*mi, "rt0", "rt1", home), refreshed(5*mi+10*ms, "rt0", "rt1b", home))
	if len(as) != 0 {
		t.Fatalf("raised %+v", as)
	}
	if got := testutil.ToFloat64(m.Benign.WithLabelValues("token_reuse", "same_client_race")); got != 1 {
		t.Errorf("benign counter = %g, want 1", got)
	}
}

// sliceHistory is a History over events held in memory (offset = index),
// with the selection semantics of the ClickHouse queries.
type sliceHistory []schemas.Event

func (h sliceHistory) Newest(_ context.Context, _ int32, before int64, _ time.Duration) (time.Time, bool, error) {
	var newest time.Time
	for i := range min(int(before), len(h)) {
		if h[i].Time.After(newest) {
			newest = h[i].Time
		}
	}
	return newest, !newest.IsZero(), nil
}

func (h sliceHistory) Events(_ context.Context, q detect.HistoryQuery, fn func(*schemas.Event) error) error {
	revoked := map[string]bool{}
	for i := range min(int(q.Before), len(h)) {
		if e := &h[i]; e.Type == schemas.TypeSessionRevoked && !e.Time.Before(q.StateSince.Truncate(time.Second)) {
			revoked[e.Tenant+"/"+e.FamilyID] = true
		}
	}
	for i := range min(int(q.Before), len(h)) {
		e := &h[i]
		if e.FamilyID == "" || e.Type == schemas.TypeLoginFailed || e.Time.Before(q.StateSince.Truncate(time.Second)) {
			continue
		}
		switch {
		case e.Type == schemas.TypeTokenRefreshed, e.Type == schemas.TypeTokenRefreshFailed, e.Type == schemas.TypeSessionRevoked:
		case !e.Time.Before(q.ClientSince.Truncate(time.Second)):
		case e.Type == schemas.TypeSessionValidated && e.Outcome == schemas.OutcomeSuccess && revoked[e.Tenant+"/"+e.FamilyID]:
		default:
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (h sliceHistory) LastSeen(_ context.Context, q detect.HistoryQuery, fn func(tenant, family string, newest time.Time) error) error {
	newest := map[[2]string]time.Time{}
	for i := range min(int(q.Before), len(h)) {
		e := &h[i]
		k := [2]string{e.Tenant, e.FamilyID}
		if e.FamilyID != "" && !e.Time.Before(q.StateSince.Truncate(time.Second)) && e.Time.After(newest[k]) {
			newest[k] = e.Time
		}
	}
	for k, t := range newest {
		if err := fn(k[0], k[1], t); err != nil {
			return err
		}
	}
	return nil
}

// rebuildCase is a history in one partition and how many anomalies a
// partition that sees all of it raises.
type rebuildCase struct {
	name string
	evs  []schemas.Event
	want int
}

// rebuildCases are the histories the rebuild must resume exactly.
func rebuildCases() []rebuildCase {
	h := time.Hour
	validations := func(from, to, every time.Duration, c cl) []schemas.Event {
		var out []schemas.Event
		for at := from; at <= to; at += every {
			out = append(out, validated(at, c))
		}
		return out
	}
	cat := func(parts ...[]schemas.Event) []schemas.Event { return slices.Concat(parts...) }
	otherFamily := func(evs []schemas.Event) []schemas.Event {
		for i := range evs {
			evs[i].FamilyID, evs[i].SessionID, evs[i].ID = "f2", "s2", evs[i].ID+"-f2"
		}
		return evs
	}
	return []rebuildCase{
		{"mixed", []schemas.Event{
			created(0, home), refreshed(5*mi, "rt0", "rt1", home), validated(6*mi, home), revoked(7 * mi),
			refreshed(8*mi, "rt0", "rtX", attacker), validated(9*mi, home), validated(9*mi+s, abroad),
		}, 2},
		// Uses keep the family alive long after the rotation, and the
		// partition's newest events are another family's: the rebuild
		// must learn the family's last use although it replays only the
		// partition's recent uses.
		{"old rotation kept alive by uses", cat(
			[]schemas.Event{created(0, home), refreshed(mi, "rt0", "rt1", home)},
			validations(h, 10*h, h, home),
			otherFamily(validations(11*h, 20*h, 30*mi, phoneWifi)),
			[]schemas.Event{refreshed(26*h, "rt0", "rtX", attacker)}), 1},
		// The owner's use, then another client inside the window, long
		// before the wall clock: the window is anchored on event time.
		{"hijack long ago", []schemas.Event{created(-48*h, home), validated(-48*h+30*s, attacker)}, 1},
		// A hijack raised, then more switches inside realert_after: raised once.
		{"hijack realert", []schemas.Event{
			validated(-35*mi, home), validated(-29*mi, otherDE), validated(-2*mi, otherDE), validated(0, home),
		}, 1},
		// A revocation violated long before the cut: not raised again.
		{"revocation raised long ago", cat(
			[]schemas.Event{created(-60*mi, home), revoked(-55 * mi), validated(-50*mi, home)},
			validations(-45*mi, 0, 5*mi, home)), 1},
	}
}

// checkRebuild cuts tc's history at every offset, rebuilds a partition
// from hist below the cut and requires it to raise, from the cut on,
// exactly the anomalies (same kinds, same ids) of a partition that saw
// everything.
func checkRebuild(t *testing.T, tc rebuildCase, partition int32, hist detect.History) {
	t.Helper()
	evs := tc.evs
	_, want, _ := judge(t, detect.DefaultConfig(), evs...)
	if len(want) != tc.want {
		t.Fatalf("the uninterrupted partition raised %d anomalies, want %d", len(want), tc.want)
	}
	for cut := 0; cut <= len(evs); cut++ {
		reg, err := detect.NewRegistry(detect.DefaultConfig(), detect.RegistryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := reg.Partition(partition)
		if _, err := p.Rebuild(context.Background(), hist, int64(cut)); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		var got []detect.Anomaly
		for i := cut; i < len(evs); i++ {
			got = p.Observe(&evs[i], int64(i), got)
		}
		var wantAfter []detect.Anomaly
		for _, a := range want {
			if a.Offset >= int64(cut) {
				wantAfter = append(wantAfter, a)
			}
		}
		if len(got) != len(wantAfter) {
			t.Errorf("cut %d: %d anomalies after the rebuild, want %d", cut, len(got), len(wantAfter))
			continue
		}
		for i := range got {
			if got[i].ID != wantAfter[i].ID || got[i].Kind != wantAfter[i].Kind {
				t.Errorf("cut %d: anomaly %d = %s %s, want %s %s", cut, i, got[i].Kind, got[i].ID, wantAfter[i].Kind, wantAfter[i].ID)
			}
		}
	}
}

// TestRebuildResumesJudgement: a partition rebuilt from the history
// below any offset judges the rest exactly as one that saw everything.
func TestRebuildResumesJudgement(t *testing.T) {
	for _, tc := range rebuildCases() {
		t.Run(tc.name, func(t *testing.T) { checkRebuild(t, tc, 0, sliceHistory(tc.evs)) })
	}
}

// TestStateExpires: a family idle for longer than state_ttl is forgotten.
func TestStateExpires(t *testing.T) {
	cfg := detect.DefaultConfig()
	cfg.StateTTL, cfg.RebuildHorizon = time.Hour, time.Hour
	m := detect.NewMetrics(nil)
	reg, err := detect.NewRegistry(cfg, detect.RegistryOptions{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	p := reg.Partition(0)
	evs := []schemas.Event{created(0, home), refreshed(mi, "rt0", "rt1", home)}
	other := created(3*time.Hour, home)
	other.FamilyID = "f2"
	evs = append(evs, other)
	var as []detect.Anomaly
	for i := range evs {
		as = p.Observe(&evs[i], int64(i), as)
	}
	if p.Families() != 1 || testutil.ToFloat64(m.Expired) != 1 {
		t.Fatalf("families = %d, expired = %g; want f1 forgotten", p.Families(), testutil.ToFloat64(m.Expired))
	}
	replay := refreshed(3*time.Hour+s, "rt0", "rtX", attacker)
	if as = p.Observe(&replay, 9, as); len(as) != 0 {
		t.Errorf("a replay in a forgotten family raised %+v", as)
	}
}
