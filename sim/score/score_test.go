package score_test

import (
	"bytes"
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/sim/score"
	"github.com/vigilhq/vigil/sim/truth"
)

var (
	t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC) // event time of the theft instance's start
	w0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)  // wall time of its first offending event
)

// fixture is one attack instance (theft#1) and one benign look-alike (tabs#1).
func fixture() truth.File {
	return truth.File{Scenarios: []truth.Scenario{
		{
			Scenario: "theft", Instance: "theft#1", Class: truth.ClassAttack, Expect: []string{"token_reuse"},
			Start: t0, End: t0.Add(2 * time.Minute), FirstOffending: t0.Add(time.Minute), FirstOffendingWall: w0,
			Tenant: "t", UserIDs: []string{"u1"}, SessionIDs: []string{"s1"}, FamilyIDs: []string{"f1"}, IPs: []string{"10.0.0.1"},
		},
		{
			Scenario: "tabs", Instance: "tabs#1", Class: truth.ClassBenign,
			Start: t0, End: t0.Add(2 * time.Minute), FirstOffending: t0.Add(time.Minute), FirstOffendingWall: w0,
			Tenant: "t", UserIDs: []string{"u2"}, SessionIDs: []string{"s2"}, FamilyIDs: []string{"f2"}, IPs: []string{"10.0.0.2"},
		},
	}}
}

// summary is what the unit tests check of a report built on fixture().
type summary struct {
	detected, other, shadow  int
	ttd                      time.Duration
	revoked, unenforced      int
	ttr                      time.Duration
	benignFP, benignFPRev    int
	normalFP, normalFPRev    int
	totalFP, totalFPRevoked  int
	benignFlagged, anomalies int
}

func summaryOf(t *testing.T, r score.Report) summary {
	t.Helper()
	if len(r.Rows) != 2 || r.Rows[0].Scenario != "theft" || r.Rows[1].Scenario != "tabs" {
		t.Fatalf("rows: %+v", r.Rows)
	}
	a, b, n := r.Rows[0], r.Rows[1], r.NormalTraffic
	s := summary{
		detected: *a.Detected, shadow: *a.ShadowAnomalies, ttd: a.TimeToDetect.Median,
		revoked: *a.Revoked, unenforced: *a.Unenforced, ttr: a.TimeToRevoke.Median,
		benignFP: *b.FalsePositiveAnomalies, benignFPRev: *b.FalsePositiveRevocations, benignFlagged: *b.FlaggedInstances,
		normalFP: *n.FalsePositiveAnomalies, normalFPRev: *n.FalsePositiveRevocations,
		totalFP: *r.Totals.FalsePositiveAnomalies, totalFPRevoked: r.Totals.FalsePositiveRevocations,
		anomalies: *a.Anomalies,
	}
	for _, o := range a.OtherDetectors {
		s.other += o.Anomalies
	}
	if got := *r.Totals.OtherDetectorAnomalies; got != s.other {
		t.Errorf("totals other_detector_anomalies = %d, row says %d", got, s.other)
	}
	return s
}

// anomaly returns an anomaly about theft#1's user, one minute into it,
// detected 180ms after the first offending event reached Kafka.
func anomaly(id string, edit func(*score.Anomaly)) score.Anomaly {
	a := score.Anomaly{
		ID: id, Detector: "token_reuse", Kind: "refresh_token_reuse", Severity: "high", Tenant: "t", UserID: "u1",
		FirstEventTime: t0.Add(time.Minute), DetectedAt: w0.Add(180 * time.Millisecond),
	}
	if edit != nil {
		edit(&a)
	}
	return a
}

// revocation returns a revocation of theft#1's family received 420ms after
// its first offending event reached Kafka.
func revocation(id string, edit func(*truth.Revocation)) truth.Revocation {
	r := truth.Revocation{ID: id, Scope: "family", Tenant: "t", UserID: "u1", FamilyID: "f1", ReceivedAt: w0.Add(420 * time.Millisecond), Enforced: true}
	if edit != nil {
		edit(&r)
	}
	return r
}

func TestScore(t *testing.T) {
	end := t0.Add(2 * time.Minute)
	tests := []struct {
		name  string
		slack time.Duration
		as    []score.Anomaly
		rs    []truth.Revocation
		want  summary
	}{
		{name: "nothing happened", want: summary{}},
		{
			name: "detection by user id",
			as:   []score.Anomaly{anomaly("a", nil)},
			want: summary{detected: 1, ttd: 180 * time.Millisecond, anomalies: 1},
		},
		{
			name: "detection by session, family and ip; earliest detected_at wins",
			as: []score.Anomaly{
				anomaly("a", func(a *score.Anomaly) { a.UserID, a.SessionID, a.DetectedAt = "", "s1", w0.Add(2*time.Second) }),
				anomaly("b", func(a *score.Anomaly) { a.UserID, a.FamilyID, a.DetectedAt = "", "f1", w0.Add(900*time.Millisecond) }),
				anomaly("c", func(a *score.Anomaly) { a.UserID, a.IP, a.DetectedAt = "", "10.0.0.1", w0.Add(3*time.Second) }),
			},
			want: summary{detected: 1, ttd: 900 * time.Millisecond, anomalies: 3},
		},
		{
			name: "detected before the wall clock of the first offending event clamps at 0",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.DetectedAt = w0.Add(-time.Second) })},
			want: summary{detected: 1, ttd: 0, anomalies: 1},
		},
		{
			name: "shadow detection counts and is reported",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.Shadow = true })},
			want: summary{detected: 1, ttd: 180 * time.Millisecond, anomalies: 1, shadow: 1},
		},
		{
			name: "other detector is neither detection nor false positive",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.Detector = "session_hijack" })},
			want: summary{other: 1},
		},
		{
			name: "benign false positive",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.UserID = "u2" })},
			want: summary{benignFP: 1, benignFlagged: 1, totalFP: 1},
		},
		{
			name: "anomaly matching attack and benign instances is a detection only",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.IP = "10.0.0.2" })},
			want: summary{detected: 1, ttd: 180 * time.Millisecond, anomalies: 1},
		},
		{
			name: "normal-traffic false positive",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.UserID = "u9" })},
			want: summary{normalFP: 1, totalFP: 1},
		},
		{
			name: "subject-less anomaly matches the instance expecting its detector",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.UserID = "" })},
			want: summary{detected: 1, ttd: 180 * time.Millisecond, anomalies: 1},
		},
		{
			name: "subject-less anomaly of an unexpected detector matches nothing",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.UserID, a.Detector = "", "session_churn" })},
			want: summary{normalFP: 1, totalFP: 1},
		},
		{
			name: "tenant mismatch",
			as:   []score.Anomaly{anomaly("a", func(a *score.Anomaly) { a.Tenant = "other" })},
			rs:   []truth.Revocation{revocation("r", func(r *truth.Revocation) { r.Tenant = "other" })},
			want: summary{normalFP: 1, normalFPRev: 1, totalFP: 1, totalFPRevoked: 1},
		},
		{
			name: "slack boundaries are inclusive",
			as: []score.Anomaly{
				anomaly("a", func(a *score.Anomaly) { a.FirstEventTime = t0.Add(-time.Minute) }),
				anomaly("b", func(a *score.Anomaly) { a.FirstEventTime = end.Add(time.Minute) }),
			},
			want: summary{detected: 1, ttd: 180 * time.Millisecond, anomalies: 2},
		},
		{
			name: "just outside the slack is normal traffic",
			as: []score.Anomaly{
				anomaly("a", func(a *score.Anomaly) { a.FirstEventTime = t0.Add(-time.Minute - time.Nanosecond) }),
				anomaly("b", func(a *score.Anomaly) { a.FirstEventTime = end.Add(time.Minute + time.Nanosecond) }),
			},
			want: summary{normalFP: 2, totalFP: 2},
		},
		{
			name:  "custom slack",
			slack: 10 * time.Second,
			as: []score.Anomaly{
				anomaly("a", func(a *score.Anomaly) { a.FirstEventTime = end.Add(10 * time.Second) }),
				anomaly("b", func(a *score.Anomaly) { a.FirstEventTime = end.Add(11 * time.Second) }),
			},
			want: summary{detected: 1, ttd: 180 * time.Millisecond, anomalies: 1, normalFP: 1, totalFP: 1},
		},
		{
			name: "time to revoke from the earliest matching revocation",
			rs: []truth.Revocation{
				revocation("r2", func(r *truth.Revocation) { r.ReceivedAt = w0.Add(2 * time.Second) }),
				revocation("r1", nil),
			},
			want: summary{revoked: 1, ttr: 420 * time.Millisecond},
		},
		{
			name: "session and user scopes",
			rs: []truth.Revocation{
				revocation("r1", func(r *truth.Revocation) { r.Scope, r.SessionID, r.FamilyID = "session", "s1", "" }),
				revocation("r2", func(r *truth.Revocation) { r.Scope, r.FamilyID = "user", "" }),
			},
			want: summary{revoked: 1, ttr: 420 * time.Millisecond},
		},
		{
			name: "scope decides which id must overlap",
			rs:   []truth.Revocation{revocation("r", func(r *truth.Revocation) { r.Scope, r.SessionID = "session", "s9" })},
			want: summary{normalFPRev: 1, totalFPRevoked: 1},
		},
		{
			name: "unenforced revocation still counts as received",
			rs:   []truth.Revocation{revocation("r", func(r *truth.Revocation) { r.Enforced = false })},
			want: summary{revoked: 1, unenforced: 1, ttr: 420 * time.Millisecond},
		},
		{
			name: "revocation at first offending wall minus slack matches and clamps at 0",
			rs:   []truth.Revocation{revocation("r", func(r *truth.Revocation) { r.ReceivedAt = w0.Add(-time.Minute) })},
			want: summary{revoked: 1, ttr: 0},
		},
		{
			name: "revocation before first offending wall minus slack is a false positive",
			rs:   []truth.Revocation{revocation("r", func(r *truth.Revocation) { r.ReceivedAt = w0.Add(-time.Minute - time.Nanosecond) })},
			want: summary{normalFPRev: 1, totalFPRevoked: 1},
		},
		{
			name: "revocation of a benign instance is a false positive",
			rs:   []truth.Revocation{revocation("r", func(r *truth.Revocation) { r.UserID, r.FamilyID = "u2", "f2" })},
			want: summary{benignFPRev: 1, benignFlagged: 1, totalFPRevoked: 1},
		},
		{
			name: "revocation matching nothing is a normal-traffic false positive",
			rs:   []truth.Revocation{revocation("r", func(r *truth.Revocation) { r.UserID, r.FamilyID = "u9", "f9" })},
			want: summary{normalFPRev: 1, totalFPRevoked: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fixture()
			f.Revocations = tc.rs
			r := score.Score(f, tc.as, score.Options{Slack: tc.slack})
			if got := summaryOf(t, r); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if *r.Totals.Anomalies != len(tc.as) {
				t.Errorf("totals anomalies = %d, want %d", *r.Totals.Anomalies, len(tc.as))
			}
		})
	}
}

// TestScoreRowsOrderAndTotals: class order, then scenario, then detector;
// a scenario expecting two detectors has two rows; totals add them up.
func TestScoreRowsOrderAndTotals(t *testing.T) {
	sc := func(name, inst, class string, start time.Time, user string, expect ...string) truth.Scenario {
		return truth.Scenario{Scenario: name, Instance: inst, Class: class, Expect: expect, Start: start, End: start.Add(time.Minute),
			FirstOffendingWall: w0, Tenant: "t", UserIDs: []string{user}}
	}
	f := truth.File{Scenarios: []truth.Scenario{
		sc("zz_benign", "zz_benign#1", truth.ClassBenign, t0, "u1"),
		sc("b_ops", "b_ops#1", truth.ClassOperations, t0, "u2", "session_churn"),
		sc("z_attack", "z_attack#1", truth.ClassAttack, t0, "u3", "token_reuse", "session_hijack"),
		sc("a_attack", "a_attack#2", truth.ClassAttack, t0.Add(time.Hour), "u4", "token_reuse"),
		sc("a_attack", "a_attack#1", truth.ClassAttack, t0, "u5", "token_reuse"),
		sc("a_benign", "a_benign#1", truth.ClassBenign, t0, "u6"),
	}}
	as := []score.Anomaly{
		{ID: "1", Detector: "token_reuse", Tenant: "t", UserID: "u3", FirstEventTime: t0, DetectedAt: w0.Add(time.Second)},
		{ID: "2", Detector: "token_reuse", Tenant: "t", UserID: "u5", FirstEventTime: t0, DetectedAt: w0.Add(3 * time.Second)},
		{ID: "3", Detector: "session_churn", Tenant: "t", UserID: "u6", FirstEventTime: t0, DetectedAt: w0},
	}
	r := score.Score(f, as, score.Options{})
	var got []string
	for _, row := range r.Rows {
		got = append(got, row.Class+"/"+row.Scenario+"/"+row.Detector+"/"+strings.Join(row.MissedInstances, ","))
	}
	want := []string{
		"attack/a_attack/token_reuse/a_attack#2",
		"attack/z_attack/session_hijack/z_attack#1",
		"attack/z_attack/token_reuse/",
		"operations/b_ops/session_churn/b_ops#1",
		"benign/a_benign/-/",
		"benign/zz_benign/-/",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows:\n got %q\nwant %q", got, want)
	}
	tot := r.Totals
	if tot.Instances != 5 || *tot.Detected != 2 || tot.TimeToDetect.Median != 2*time.Second || tot.TimeToDetect.Max != 3*time.Second || *tot.FalsePositiveAnomalies != 1 {
		t.Errorf("totals: instances %d, detected %d, ttd %+v, fp %d; want 5, 2, {2 2s 3s}, 1",
			tot.Instances, *tot.Detected, *tot.TimeToDetect, *tot.FalsePositiveAnomalies)
	}
}

// TestScoreIsDeterministic: shuffling the inputs changes neither rendering.
func TestScoreIsDeterministic(t *testing.T) {
	f := fixture()
	f.Revocations = []truth.Revocation{
		revocation("r1", nil),
		revocation("r2", func(r *truth.Revocation) { r.UserID, r.FamilyID = "u2", "f2" }),
		revocation("r3", func(r *truth.Revocation) { r.UserID, r.FamilyID = "u9", "f9" }),
	}
	as := []score.Anomaly{
		anomaly("a", nil),
		anomaly("b", func(a *score.Anomaly) { a.Detector = "session_hijack" }),
		anomaly("c", func(a *score.Anomaly) { a.Detector, a.UserID = "login_storm", "u2" }),
		anomaly("d", func(a *score.Anomaly) { a.Detector, a.UserID = "session_churn", "u9" }),
		anomaly("e", func(a *score.Anomaly) { a.Detector, a.UserID = "token_reuse", "u9" }),
	}
	render := func(r score.Report) string {
		var b bytes.Buffer
		if err := r.WriteTable(&b); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	want := render(score.Score(f, as, score.Options{}))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		g := fixture()
		g.Revocations = slices.Clone(f.Revocations)
		rng.Shuffle(len(g.Scenarios), func(i, j int) { g.Scenarios[i], g.Scenarios[j] = g.Scenarios[j], g.Scenarios[i] })
		rng.Shuffle(len(g.Revocations), func(i, j int) { g.Revocations[i], g.Revocations[j] = g.Revocations[j], g.Revocations[i] })
		bs := slices.Clone(as)
		rng.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
		if got := render(score.Score(g, bs, score.Options{})); got != want {
			t.Fatalf("shuffled input changed the report:\n%s\nwant\n%s", got, want)
		}
	}
}

// TestComputeWithoutConnection: no connection means detection is not
// scored, yet revocations still are.
func TestComputeWithoutConnection(t *testing.T) {
	f := fixture()
	f.Revocations = []truth.Revocation{revocation("r1", nil), revocation("r2", func(r *truth.Revocation) { r.UserID, r.FamilyID = "u9", "f9" })}
	r, err := score.Compute(context.Background(), nil, f, score.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.DetectionScored || !slices.Contains(r.Notes, "no anomalies table in vigil: detection not scored") {
		t.Errorf("scored %v, notes %q; want not scored and the note", r.DetectionScored, r.Notes)
	}
	row := r.Rows[0]
	if row.Detected != nil || row.TimeToDetect != nil || row.FalsePositiveAnomalies != nil || *row.Revoked != 1 || r.Totals.FalsePositiveRevocations != 1 {
		t.Errorf("row %+v, totals %+v", row, r.Totals)
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if first := strings.SplitN(b.String(), "\n", 3)[1]; !strings.Contains(first, " n/a ") {
		t.Errorf("attack row does not say n/a:\n%s", b.String())
	}
}

// TestScoreWithoutFirstOffendingWall: the instance is still detected and
// revoked, but nothing is measured, and a note says so.
func TestScoreWithoutFirstOffendingWall(t *testing.T) {
	f := fixture()
	f.Scenarios[0].FirstOffendingWall = time.Time{}
	f.Revocations = []truth.Revocation{revocation("r", func(r *truth.Revocation) { r.ReceivedAt = w0.Add(-time.Hour) })}
	r := score.Score(f, []score.Anomaly{anomaly("a", nil)}, score.Options{})
	row := r.Rows[0]
	if *row.Detected != 1 || row.TimeToDetect.Count != 0 || *row.Revoked != 1 || row.TimeToRevoke.Count != 0 {
		t.Errorf("row %+v", row)
	}
	want := "instance theft#1 has no first_offending_wall: its time to detect and time to revoke are not measured"
	if !slices.Equal(r.Notes, []string{want}) {
		t.Errorf("notes %q, want %q", r.Notes, want)
	}
}

// TestWideInstances: an instance naming no subjects (a reconnect storm, a
// login surge) matches any anomaly in its window; revocations never match it.
func TestWideInstances(t *testing.T) {
	storm := truth.Scenario{Scenario: "reconnect_storm", Instance: "reconnect_storm#1", Class: truth.ClassOperations, Expect: []string{"login_storm"},
		Start: t0, End: t0.Add(time.Minute), FirstOffending: t0.Add(10 * time.Second), FirstOffendingWall: w0}
	surge := truth.Scenario{Scenario: "flash_sale", Instance: "flash_sale#1", Class: truth.ClassBenign,
		Start: t0.Add(time.Hour), End: t0.Add(time.Hour + time.Minute), Tenant: "t"}
	f := truth.File{Scenarios: []truth.Scenario{storm, surge},
		Revocations: []truth.Revocation{{Scope: "user", UserID: "u9", ReceivedAt: w0.Add(time.Second)}}}
	as := []score.Anomaly{
		{ID: "a", Detector: "login_storm", Tenant: "x", FirstEventTime: t0.Add(20 * time.Second), DetectedAt: w0.Add(3 * time.Second)},
		{ID: "b", Detector: "login_storm", Tenant: "t", FirstEventTime: t0.Add(time.Hour + 30*time.Second), DetectedAt: w0.Add(time.Hour)},
		{ID: "c", Detector: "login_storm", Tenant: "other", FirstEventTime: t0.Add(time.Hour + 30*time.Second), DetectedAt: w0.Add(time.Hour)},
	}
	r := score.Score(f, as, score.Options{Slack: time.Second})
	if len(r.Rows) != 2 {
		t.Fatalf("rows: %+v", r.Rows)
	}
	st, fl, n := r.Rows[0], r.Rows[1], r.NormalTraffic
	if *st.Detected != 1 || st.TimeToDetect.Median != 3*time.Second {
		t.Errorf("storm: detected %d in %v, want 1 in 3s", *st.Detected, st.TimeToDetect.Median)
	}
	if *st.Revoked != 0 {
		t.Errorf("storm: a user revocation matched a subject-less instance")
	}
	if *fl.FalsePositiveAnomalies != 1 {
		t.Errorf("flash sale: %d false positives, want 1 (the other tenant's anomaly is not about it)", *fl.FalsePositiveAnomalies)
	}
	if *n.FalsePositiveAnomalies != 1 || *n.FalsePositiveRevocations != 1 {
		t.Errorf("normal traffic: %d anomalies, %d revocations, want 1 and 1", *n.FalsePositiveAnomalies, *n.FalsePositiveRevocations)
	}
}

// TestNamedBeforeWide: an anomaly explained by an instance that names its
// subject is not credited to an overlapping service-wide one; skipped
// instances are left out; a revocation answered 404 earns no credit.
func TestNamedBeforeWide(t *testing.T) {
	stuffing := truth.Scenario{Scenario: "credential_stuffing", Instance: "credential_stuffing#1", Class: truth.ClassAttack, Expect: []string{"login_storm"},
		Start: t0, End: t0.Add(time.Minute), FirstOffending: t0, FirstOffendingWall: w0, IPs: []string{"1.2.3.4"}, UserIDs: []string{"u1"}}
	storm := truth.Scenario{Scenario: "reconnect_storm", Instance: "reconnect_storm#1", Class: truth.ClassOperations, Expect: []string{"login_storm"},
		Start: t0.Add(30 * time.Second), End: t0.Add(2 * time.Minute), FirstOffending: t0.Add(40 * time.Second), FirstOffendingWall: w0.Add(40 * time.Second)}
	theft := truth.Scenario{Scenario: "token_theft_replay", Instance: "token_theft_replay#1", Class: truth.ClassAttack, Expect: []string{"token_reuse"},
		Start: t0, End: t0.Add(time.Minute), Skipped: true, FamilyIDs: []string{"f1"}}
	f := truth.File{Scenarios: []truth.Scenario{stuffing, storm, theft}, Revocations: []truth.Revocation{
		{Scope: "user", UserID: "u1", ReceivedAt: w0.Add(time.Second), Outcome: "not_found"},
	}}
	as := []score.Anomaly{{ID: "a", Detector: "login_storm", IP: "1.2.3.4", FirstEventTime: t0.Add(45 * time.Second), DetectedAt: w0.Add(2 * time.Second)}}
	r := score.Score(f, as, score.Options{})
	if len(r.Rows) != 2 {
		t.Fatalf("rows %+v, want stuffing and storm only (the theft was skipped)", r.Rows)
	}
	st, storms := r.Rows[0], r.Rows[1]
	if *st.Detected != 1 || *storms.Detected != 0 {
		t.Errorf("detected: stuffing %d, storm %d; want 1 and 0", *st.Detected, *storms.Detected)
	}
	if *st.Revoked != 0 || *r.NormalTraffic.FalsePositiveRevocations != 0 {
		t.Errorf("a 404 revocation of the stuffing victim: revoked %d, false positives %d; want 0 and 0", *st.Revoked, *r.NormalTraffic.FalsePositiveRevocations)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "token_theft_replay#1") {
		t.Errorf("notes %q do not name the skipped instance", r.Notes)
	}
}

// TestSubjectlessAnomalies: an anomaly naming no subject goes to the
// service-wide instance around it, else to exactly one instance expecting
// its detector.
func TestSubjectlessAnomalies(t *testing.T) {
	attack := func(name string, start time.Duration) truth.Scenario {
		return truth.Scenario{Scenario: name, Instance: name + "#1", Class: truth.ClassAttack, Expect: []string{"login_storm"},
			Start: t0.Add(start), End: t0.Add(start + 20*time.Second), FirstOffending: t0.Add(start), FirstOffendingWall: w0.Add(start), IPs: []string{name}}
	}
	storm := truth.Scenario{Scenario: "reconnect_storm", Instance: "reconnect_storm#1", Class: truth.ClassOperations, Expect: []string{"login_storm"},
		Start: t0.Add(30 * time.Second), End: t0.Add(50 * time.Second), FirstOffending: t0.Add(40 * time.Second), FirstOffendingWall: w0.Add(40 * time.Second)}
	a := score.Anomaly{ID: "a", Detector: "login_storm", FirstEventTime: t0.Add(42 * time.Second), DetectedAt: w0.Add(45 * time.Second)}
	detected := func(r score.Report) map[string]int {
		m := map[string]int{}
		for _, row := range r.Rows {
			m[row.Scenario] = *row.Detected
		}
		return m
	}
	got := detected(score.Score(truth.File{Scenarios: []truth.Scenario{attack("credential_stuffing", 0), attack("brute_force", 10*time.Second), storm}}, []score.Anomaly{a}, score.Options{}))
	if want := map[string]int{"credential_stuffing": 0, "brute_force": 0, "reconnect_storm": 1}; !maps.Equal(got, want) {
		t.Errorf("with a storm around it: detected %v, want %v", got, want)
	}
	got = detected(score.Score(truth.File{Scenarios: []truth.Scenario{attack("credential_stuffing", 0), attack("brute_force", 10*time.Second)}}, []score.Anomaly{a}, score.Options{}))
	if want := map[string]int{"credential_stuffing": 0, "brute_force": 1}; !maps.Equal(got, want) {
		t.Errorf("without: detected %v, want %v (only the latest to start before it)", got, want)
	}
}
