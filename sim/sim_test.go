package sim

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/truth"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

var testStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

// testWall is the wall clock simulators get in tests, so that truth records
// of two runs compare equal.
func testWall() time.Time { return testStart.Add(-time.Hour) }

// run is one finished simulation: its events, decoded by the v1 decoder, and
// the truth records it reported.
type run struct {
	cfg  Config
	evs  []schemas.Event
	recs []truth.Scenario
	by   map[subject][]int // events by truth subject; see index
}

// simulate runs cfg to its end; every event must encode to JSON the v1
// decoder accepts.
func simulate(t *testing.T, cfg Config) *run {
	t.Helper()
	r, err := generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// generate is simulate for any goroutine: it reports the first problem.
func generate(cfg Config) (*run, error) {
	r := &run{}
	s, err := New(cfg, WithTruth(func(rec truth.Scenario) { r.recs = append(r.recs, rec) }), WithWallClock(testWall))
	if err != nil {
		return nil, err
	}
	r.cfg = s.Config()
	end := r.cfg.Start.Add(r.cfg.Duration)
	dec := schemas.NewDecoder(schemas.DecoderConfig{Now: func() time.Time { return end }})
	var buf []byte
	for e := s.Next(); e != nil; e = s.Next() {
		buf = schemas.AppendJSON(buf[:0], e)
		var ev schemas.Event
		if err := dec.Decode(buf, &ev); err != nil {
			return nil, fmt.Errorf("event %d does not decode: %w\n%s", len(r.evs), err, buf)
		}
		r.evs = append(r.evs, ev)
	}
	s.Close()
	if got := s.Stats().Events; got != int64(len(r.evs)) {
		return nil, fmt.Errorf("Stats().Events = %d, want the %d events handed out", got, len(r.evs))
	}
	r.index()
	return r, nil
}

// subject is a user ('u'), session ('s'), family ('f') or IP ('i').
type subject struct {
	kind byte
	id   string
}

// index records, for every subject of a truth record, the events that
// carry it.
func (r *run) index() {
	r.by = map[subject][]int{}
	for _, rec := range r.recs {
		for _, sub := range subjects(rec) {
			r.by[sub] = nil
		}
	}
	for i := range r.evs {
		e := &r.evs[i]
		for _, sub := range [...]subject{{'u', e.UserID}, {'s', e.SessionID}, {'f', e.FamilyID}, {'i', e.IP}} {
			if l, ok := r.by[sub]; ok && sub.id != "" {
				r.by[sub] = append(l, i)
			}
		}
	}
}

// of returns the indices of the events that carry a truth record's
// subject, in stream order.
func (r *run) of(kind byte, id string) []int {
	l, ok := r.by[subject{kind, id}]
	if !ok {
		panic(fmt.Sprintf("%c:%s is no truth record's subject", kind, id))
	}
	return l
}

// within reports whether t is in the record's [Start, End].
func within(rec truth.Scenario, t time.Time) bool {
	return !t.Before(rec.Start) && !t.After(rec.End)
}

// subjects lists a record's subjects.
func subjects(rec truth.Scenario) []subject {
	var out []subject
	for _, l := range []struct {
		kind byte
		ids  []string
	}{{'u', rec.UserIDs}, {'s', rec.SessionIDs}, {'f', rec.FamilyIDs}, {'i', rec.IPs}} {
		for _, id := range l.ids {
			out = append(out, subject{l.kind, id})
		}
	}
	return out
}

// mentions reports whether e carries one of the record's subjects.
func mentions(e *schemas.Event, rec truth.Scenario) bool {
	return slices.Contains(rec.UserIDs, e.UserID) && e.UserID != "" ||
		slices.Contains(rec.SessionIDs, e.SessionID) && e.SessionID != "" ||
		slices.Contains(rec.FamilyIDs, e.FamilyID) && e.FamilyID != "" ||
		slices.Contains(rec.IPs, e.IP) && e.IP != ""
}

// reuse is a refresh token exchanged a second time: evs[second] is a
// token.refreshed with the same family and parent_token_id as evs[first].
type reuse struct{ first, second int }

// reuses finds every second exchange of a refresh token, by family,
// tracking each family's exchanged tokens through the stream.
func (r *run) reuses() map[string][]reuse {
	exchanged := map[string]int{} // family + " " + parent → first exchange
	out := map[string][]reuse{}
	for i := range r.evs {
		e := &r.evs[i]
		if e.Type != schemas.TypeTokenRefreshed {
			continue
		}
		k := e.FamilyID + " " + e.ParentTokenID
		if first, ok := exchanged[k]; ok {
			out[e.FamilyID] = append(out[e.FamilyID], reuse{first, i})
			continue
		}
		exchanged[k] = i
	}
	return out
}

// scenarioShapes checks that a record's events look like its scenario.
var scenarioShapes = map[string]func(t *testing.T, r *run, rec truth.Scenario, reuses map[string][]reuse){
	"token_theft_replay": func(t *testing.T, r *run, rec truth.Scenario, reuses map[string][]reuse) {
		if len(rec.FamilyIDs) != 1 || len(rec.SessionIDs) != 1 {
			t.Fatalf("want one victim session and family, got %v and %v", rec.SessionIDs, rec.FamilyIDs)
		}
		fam := rec.FamilyIDs[0]
		theft := false
		for _, ru := range reuses[fam] {
			e := &r.evs[ru.second]
			if !within(rec, e.Time) {
				continue
			}
			earlier := map[string]bool{}
			for _, i := range r.of('f', fam) {
				if i < ru.second {
					earlier[r.evs[i].IP] = true
				}
			}
			if !earlier[e.IP] {
				theft = true
				if !slices.Contains(rec.IPs, e.IP) {
					t.Errorf("replay from %s, which the record's ips %v do not list", e.IP, rec.IPs)
				}
			}
		}
		if !theft {
			t.Errorf("no token.refreshed of family %s re-exchanges an already exchanged token from a new IP (reuses: %v)", fam, reuses[fam])
		}
		reused := 0
		for _, i := range r.of('f', fam) {
			if e := &r.evs[i]; e.Type == schemas.TypeTokenRefreshFailed && e.Reason == "reused" && within(rec, e.Time) {
				reused++
			}
		}
		if reused == 0 {
			t.Errorf("no token.refresh_failed with reason reused in family %s", fam)
		}
	},
	"concurrent_hijack": func(t *testing.T, r *run, rec truth.Scenario, _ map[string][]reuse) {
		if len(rec.SessionIDs) != 1 {
			t.Fatalf("want one victim session, got %v", rec.SessionIDs)
		}
		countries, asns := map[string]int{}, map[uint32]int{}
		for _, i := range r.of('s', rec.SessionIDs[0]) {
			if e := &r.evs[i]; e.Type == schemas.TypeSessionValidated && e.Outcome == schemas.OutcomeSuccess && within(rec, e.Time) {
				countries[e.Country]++
				asns[e.ASN]++
			}
		}
		if len(countries) < 2 || len(asns) < 2 {
			t.Errorf("successful validations of %s come from countries %v and ASNs %v, want two of each", rec.SessionIDs[0], countries, asns)
		}
	},
	"revocation_not_enforced": func(t *testing.T, r *run, rec truth.Scenario, _ map[string][]reuse) {
		if len(rec.SessionIDs) != 1 {
			t.Fatalf("want one victim session, got %v", rec.SessionIDs)
		}
		var revokedAt time.Time
		late := 0
		for _, i := range r.of('s', rec.SessionIDs[0]) {
			e := &r.evs[i]
			switch {
			case e.Type == schemas.TypeSessionRevoked && e.Actor == schemas.ActorAdmin && revokedAt.IsZero():
				revokedAt = e.Time
			case !revokedAt.IsZero() && e.Type == schemas.TypeSessionValidated && e.Outcome == schemas.OutcomeSuccess && e.Time.Sub(revokedAt) > 5*time.Second:
				late++
			}
		}
		if revokedAt.IsZero() || !within(rec, revokedAt) {
			t.Fatalf("no session.revoked by an admin of %s inside the record (at %v)", rec.SessionIDs[0], revokedAt)
		}
		if late == 0 {
			t.Errorf("no successful validation of %s more than 5s after its revocation", rec.SessionIDs[0])
		}
		if !rec.FirstOffending.After(revokedAt.Add(5 * time.Second)) {
			t.Errorf("first offending %s is within the 5s grace of the revocation at %s", rec.FirstOffending, revokedAt)
		}
	},
	"credential_stuffing": func(t *testing.T, r *run, rec truth.Scenario, _ map[string][]reuse) {
		if len(rec.IPs) < 2 || len(rec.IPs) > 16 {
			t.Errorf("%d source IPs, want a handful (at most 16)", len(rec.IPs))
		}
		users, attempts, unknown := loginAttempts(r, rec)
		if len(users) < 30 || float64(attempts-unknown)/float64(len(users)) > 2 {
			t.Errorf("%d attempts on %d distinct users, want many users, 1–2 tries each", attempts-unknown, len(users))
		}
		if unknown == 0 || unknown == attempts {
			t.Errorf("%d of %d attempts name unknown users, want some but not all", unknown, attempts)
		}
	},
	"password_spraying": func(t *testing.T, r *run, rec truth.Scenario, _ map[string][]reuse) {
		users, _, _ := loginAttempts(r, rec)
		if len(users) < 100 {
			t.Errorf("%d distinct users tried, want many", len(users))
		}
		for u, n := range users {
			if n > 3 {
				t.Errorf("user %s tried %d times, want at most one per password (3)", u, n)
			}
		}
	},
	"brute_force": func(t *testing.T, r *run, rec truth.Scenario, _ map[string][]reuse) {
		if len(rec.UserIDs) != 1 {
			t.Fatalf("want one target user, got %v", rec.UserIDs)
		}
		if len(rec.IPs) <= 100 {
			t.Errorf("%d source IPs, want more than 100", len(rec.IPs))
		}
		users, attempts, _ := loginAttempts(r, rec)
		if len(users) != 1 || users[rec.UserIDs[0]] != attempts {
			t.Errorf("attempts from the record's IPs target %v, want only %s", users, rec.UserIDs[0])
		}
	},
	"multi_tab_refresh": func(t *testing.T, r *run, rec truth.Scenario, reuses map[string][]reuse) {
		sameClientReuse(t, r, rec, reuses, 30*time.Millisecond)
	},
	"mobile_retry": func(t *testing.T, r *run, rec truth.Scenario, reuses map[string][]reuse) {
		sameClientReuse(t, r, rec, reuses, 3*time.Second)
	},
	"corporate_nat": func(t *testing.T, r *run, rec truth.Scenario, _ map[string][]reuse) {
		if len(rec.IPs) != 1 {
			t.Fatalf("want the one NAT address, got %v", rec.IPs)
		}
		users := map[string]bool{}
		for _, i := range r.of('i', rec.IPs[0]) {
			if e := &r.evs[i]; e.Type == schemas.TypeSessionCreated && within(rec, e.Time) {
				users[e.UserID] = true
			}
		}
		if len(users) < 100 {
			t.Errorf("%d users logged in through %s, want many", len(users), rec.IPs[0])
		}
	},
	"reconnect_storm": func(t *testing.T, r *run, rec truth.Scenario, _ map[string][]reuse) {
		var unavailable, dropped, logins int
		var droppedAt time.Time
		for i := range r.evs {
			e := &r.evs[i]
			if !within(rec, e.Time) {
				continue
			}
			switch {
			case e.Reason == "store_unavailable":
				unavailable++
			case e.Type == schemas.TypeSessionExpired && e.Reason == "invalid":
				dropped++
				droppedAt = e.Time
			case e.Type == schemas.TypeSessionCreated && !droppedAt.IsZero():
				logins++
			}
		}
		if unavailable == 0 || dropped == 0 || logins < dropped/4 {
			t.Errorf("%d store_unavailable failures, %d sessions dropped, %d logins after: want an outage, lost sessions and a re-login surge", unavailable, dropped, logins)
		}
		if rec.FirstOffending.Before(droppedAt) {
			t.Errorf("first offending %s is before the sessions were lost (%s)", rec.FirstOffending, droppedAt)
		}
	},
	"key_rotation_churn": func(t *testing.T, r *run, rec truth.Scenario, _ map[string][]reuse) {
		dropped := 0
		for i := range r.evs {
			if e := &r.evs[i]; e.Type == schemas.TypeSessionExpired && e.Reason == "invalid" && within(rec, e.Time) {
				dropped++
			}
		}
		if dropped < 100 {
			t.Errorf("%d sessions expired with reason invalid, want a burst", dropped)
		}
	},
}

// loginAttempts counts the attacker's logins from the record's IPs inside
// it, by user; unknown counts the attempts without a user. An attacker's
// failed attempts carry no device; its successes create the record's
// sessions. (Real users on a colliding address are not counted.)
func loginAttempts(r *run, rec truth.Scenario) (users map[string]int, attempts, unknown int) {
	users = map[string]int{}
	for _, ip := range rec.IPs {
		for _, i := range r.of('i', ip) {
			e := &r.evs[i]
			attacker := e.Type == schemas.TypeLoginFailed && e.DeviceID == "" ||
				e.Type == schemas.TypeSessionCreated && slices.Contains(rec.SessionIDs, e.SessionID)
			if !attacker || !within(rec, e.Time) {
				continue
			}
			attempts++
			if e.UserID == "" {
				unknown++
				continue
			}
			users[e.UserID]++
		}
	}
	return users, attempts, unknown
}

// sameClientReuse checks a benign double exchange: each of the record's
// families exchanges one token twice, from the same IP and device, within
// window.
func sameClientReuse(t *testing.T, r *run, rec truth.Scenario, reuses map[string][]reuse, window time.Duration) {
	t.Helper()
	if len(rec.FamilyIDs) == 0 {
		t.Fatal("no families")
	}
	for _, fam := range rec.FamilyIDs {
		n := 0
		for _, ru := range reuses[fam] {
			a, b := &r.evs[ru.first], &r.evs[ru.second]
			if !within(rec, b.Time) {
				continue
			}
			n++
			if d := b.Time.Sub(a.Time); d > window || a.IP != b.IP || a.DeviceID != b.DeviceID {
				t.Errorf("family %s: parent %s exchanged again after %s from %s/%s (first from %s/%s), want within %s from the same client",
					fam, b.ParentTokenID, d, b.IP, b.DeviceID, a.IP, a.DeviceID, window)
			}
		}
		if n == 0 {
			t.Errorf("family %s: no token exchanged twice", fam)
		}
	}
}

// checkTruth checks every truth record of r against the events emitted.
func checkTruth(t *testing.T, r *run) {
	t.Helper()
	reuses := r.reuses()
	end := r.cfg.Start.Add(r.cfg.Duration)
	owner := map[string]string{} // family → scenario, for the families a scenario drives
	for _, rec := range r.recs {
		t.Run(rec.Instance, func(t *testing.T) {
			if rec.Events == 0 {
				t.Fatalf("emitted no events (%s)", rec.Note)
			}
			if rec.Start.Before(r.cfg.Start) || rec.End.Before(rec.Start) || !rec.End.Before(end) {
				t.Errorf("start %s, end %s: want start ≤ end inside the run [%s, %s)", rec.Start, rec.End, r.cfg.Start, end)
			}
			// Benign records too: their first offending event is where a
			// detector would be tempted, the origin of a false positive.
			if rec.FirstOffending.IsZero() || rec.FirstOffending.Before(rec.Start) || rec.FirstOffending.After(rec.End) {
				t.Errorf("first offending %s is not inside [%s, %s]", rec.FirstOffending, rec.Start, rec.End)
			}
			if !rec.FirstOffendingWall.Equal(testWall()) {
				t.Errorf("first offending wall %s, want the wall clock's %s", rec.FirstOffendingWall, testWall())
			}
			if !rec.FirstOffending.IsZero() {
				i := sort.Search(len(r.evs), func(i int) bool { return !r.evs[i].Time.Before(rec.FirstOffending) })
				found := false
				for ; i < len(r.evs) && r.evs[i].Time.Equal(rec.FirstOffending); i++ {
					if len(subjects(rec)) == 0 || mentions(&r.evs[i], rec) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("no event at the first offending time %s mentions the record's subjects", rec.FirstOffending.Format(time.RFC3339Nano))
				}
			}
			for _, sub := range subjects(rec) {
				if !slices.ContainsFunc(r.of(sub.kind, sub.id), func(i int) bool { return within(rec, r.evs[i].Time) }) {
					t.Errorf("subject %c:%s appears in no event between %s and %s", sub.kind, sub.id, rec.Start, rec.End)
				}
			}
			if check := scenarioShapes[rec.Scenario]; check != nil {
				check(t, r, rec, reuses)
			}
		})
		if rec.Scenario == "token_theft_replay" || rec.Scenario == "multi_tab_refresh" || rec.Scenario == "mobile_retry" {
			for _, f := range rec.FamilyIDs {
				owner[f] = rec.Scenario
			}
		}
	}
	// Token reuse is a detector's signal: outside those scenarios, normal
	// traffic must never exchange a token twice or have one refused as reused.
	for fam, rs := range reuses {
		if owner[fam] == "" {
			e := &r.evs[rs[0].second]
			t.Errorf("family %s exchanges %s twice (at %s) outside any reuse scenario", fam, e.ParentTokenID, e.Time)
		}
	}
	for i := range r.evs {
		if e := &r.evs[i]; e.Reason == "reused" && owner[e.FamilyID] != "token_theft_replay" {
			t.Errorf("event %s refuses a reused token of family %s outside token_theft_replay", e.ID, e.FamilyID)
		}
	}
}

// checkStream checks stream-wide properties: event time never goes
// backwards and stays inside the run, and ids are unique.
func checkStream(t *testing.T, r *run) {
	t.Helper()
	end := r.cfg.Start.Add(r.cfg.Duration)
	ids := make(map[string]bool, len(r.evs))
	for i := range r.evs {
		e := &r.evs[i]
		if i > 0 && e.Time.Before(r.evs[i-1].Time) {
			t.Fatalf("event %d (%s) at %s is before the previous one at %s", i, e.ID, e.Time, r.evs[i-1].Time)
		}
		if e.Time.Before(r.cfg.Start) || !e.Time.Before(end) {
			t.Fatalf("event %s at %s is outside the run [%s, %s)", e.ID, e.Time, r.cfg.Start, end)
		}
		if ids[e.ID] {
			t.Fatalf("event id %s is used twice", e.ID)
		}
		ids[e.ID] = true
	}
}

// lastStep is how far past its end an instance may still emit: the step
// that notices the end (mobile_retry's retry comes up to 2.5 s after the
// first exchange).
const lastStep = 2500 * time.Millisecond

// allScenarios returns a config running every scenario, one after another,
// over d.
func allScenarios(t *testing.T, seed uint64, d time.Duration) Config {
	t.Helper()
	specs, err := Spread(ScenarioNames(), d)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Seed: seed, Users: 3000, Rate: 200, Start: testStart, Duration: d, Scenarios: specs}
}

// instances is how many truth records cfg's scenarios produce.
func instances(cfg Config) map[string]int {
	want := map[string]int{}
	for _, sp := range cfg.Scenarios {
		def := scenarioByName[sp.Name]
		n := 1
		if def.perVictim {
			n = cmp.Or(sp.Count, def.count)
		}
		want[sp.Name] += n
	}
	return want
}

func countScenarios(recs []truth.Scenario) map[string]int {
	got := map[string]int{}
	for _, r := range recs {
		got[r.Scenario]++
	}
	return got
}

// TestSameSeedSameStream: two simulators with the same config emit the same
// bytes and report the same truth; another seed gives another stream.
func TestSameSeedSameStream(t *testing.T) {
	t.Parallel()
	cfg := allScenarios(t, 42, 4*time.Minute)
	other := cfg
	other.Seed = 43
	var recs [3][]truth.Scenario
	var sims [3]*Simulator
	for i, c := range []Config{cfg, cfg, other} {
		s, err := New(c, WithTruth(func(r truth.Scenario) { recs[i] = append(recs[i], r) }), WithWallClock(testWall))
		if err != nil {
			t.Fatal(err)
		}
		sims[i] = s
	}
	var a, b []byte
	n, differ := 0, 0
	for {
		ea, eb, ec := sims[0].Next(), sims[1].Next(), sims[2].Next()
		if (ea == nil) != (eb == nil) {
			t.Fatalf("after %d events one stream ended and the other did not", n)
		}
		if ea == nil {
			break
		}
		a, b = schemas.AppendJSON(a[:0], ea), schemas.AppendJSON(b[:0], eb)
		if !bytes.Equal(a, b) {
			t.Fatalf("event %d differs:\n%s\n%s", n, a, b)
		}
		if ec == nil || !bytes.Equal(a, schemas.AppendJSON(b[:0], ec)) {
			differ++
		}
		n++
	}
	for ec := sims[2].Next(); ec != nil; ec = sims[2].Next() {
		differ++
	}
	for _, s := range sims {
		s.Close()
	}
	if want := int(0.8 * cfg.Rate * cfg.Duration.Seconds()); n < want {
		t.Errorf("only %d events in %s at %v/s", n, cfg.Duration, cfg.Rate)
	}
	if !reflect.DeepEqual(recs[0], recs[1]) {
		t.Errorf("truth differs between two runs with the same seed:\n%+v\n%+v", recs[0], recs[1])
	}
	if want := instances(cfg); !reflect.DeepEqual(countScenarios(recs[0]), want) {
		t.Errorf("truth records by scenario %v, want %v", countScenarios(recs[0]), want)
	}
	if differ < n/2 {
		t.Errorf("seed 43 gives %d events different from seed 42's %d, want a different stream", differ, n)
	}
	if reflect.DeepEqual(recs[0], recs[2]) {
		t.Error("seed 43 gives the same truth as seed 42")
	}
}

// TestAllScenariosTruth runs every scenario in one run and checks the
// stream and each truth record against the events.
func TestAllScenariosTruth(t *testing.T) {
	t.Parallel()
	cfg := allScenarios(t, 1, 5*time.Minute)
	r := simulate(t, cfg)
	checkStream(t, r)
	if want := instances(cfg); !reflect.DeepEqual(countScenarios(r.recs), want) {
		t.Errorf("truth records by scenario %v, want %v", countScenarios(r.recs), want)
	}
	// Each instance stays inside its scenario's slot (give or take its last
	// step, which notices the end), so consecutive scenarios do not overlap.
	spec := map[string]ScenarioSpec{}
	for _, sp := range cfg.Scenarios {
		spec[sp.Name] = sp
	}
	for _, rec := range r.recs {
		sp := spec[rec.Scenario]
		from, to := cfg.Start.Add(sp.At), cfg.Start.Add(sp.At+sp.Duration)
		if rec.Start.Before(from) || rec.End.After(to.Add(lastStep)) {
			t.Errorf("%s runs from %s to %s, outside its slot [%s, %s]", rec.Instance, rec.Start, rec.End, from, to)
		}
	}
	types := map[schemas.Type]int{}
	for i := range r.evs {
		types[r.evs[i].Type]++
	}
	for _, ty := range schemas.Types() {
		if types[ty] == 0 {
			t.Errorf("no %s event in the run (%v)", ty, types)
		}
	}
	checkTruth(t, r)
}

// TestEachScenario runs each scenario alone: its events decode, it emits
// some, and its truth matches the stream.
func TestEachScenario(t *testing.T) {
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			def := scenarioByName[name]
			d := min(def.duration, 2*time.Minute)
			cfg := Config{Seed: 7, Users: 2000, Rate: 100, Start: testStart, Duration: d + 40*time.Second,
				Scenarios: []ScenarioSpec{{Name: name, At: 20 * time.Second, Duration: d}}}
			r := simulate(t, cfg)
			checkStream(t, r)
			if want := instances(cfg); !reflect.DeepEqual(countScenarios(r.recs), want) {
				t.Errorf("truth records %v, want %v", countScenarios(r.recs), want)
			}
			for _, rec := range r.recs {
				// Instances of one spec start 1.5 s apart from its At.
				if d := rec.Start.Sub(testStart.Add(20 * time.Second)); d < 0 || d%(1500*time.Millisecond) != 0 || d >= time.Duration(len(r.recs))*1500*time.Millisecond {
					t.Errorf("%s starts at %s, want at its At plus a multiple of 1.5s", rec.Instance, rec.Start)
				}
			}
			checkTruth(t, r)
		})
	}
}

// TestInstancesEndWithTheirSpec: the instances of a per-victim scenario
// start 1.5 s apart but all end with their spec, so that scenarios placed
// one after another (Spread) do not overlap.
func TestInstancesEndWithTheirSpec(t *testing.T) {
	f := func(name string) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sp := ScenarioSpec{Name: name, At: 20 * time.Second, Duration: 30 * time.Second, Count: 5}
			r := simulate(t, Config{Seed: 8, Users: 2000, Rate: 150, Start: testStart, Duration: 2 * time.Minute, Scenarios: []ScenarioSpec{sp}})
			if len(r.recs) != sp.Count {
				t.Fatalf("%d instances, want %d", len(r.recs), sp.Count)
			}
			starts := map[time.Duration]bool{}
			for _, rec := range r.recs {
				starts[rec.Start.Sub(testStart.Add(sp.At))] = true
				if end := testStart.Add(sp.At + sp.Duration); rec.End.After(end.Add(lastStep)) {
					t.Errorf("%s ends at %s, %s after its spec", rec.Instance, rec.End, rec.End.Sub(end))
				}
				if rec.Events == 0 {
					t.Errorf("%s emitted nothing", rec.Instance)
				}
			}
			for k := range sp.Count {
				if d := time.Duration(k) * 1500 * time.Millisecond; !starts[d] {
					t.Errorf("no instance starts %s after the spec's At (starts: %v)", d, starts)
				}
			}
		})
	}
	f("token_theft_replay")
	f("concurrent_hijack")
	f("revocation_not_enforced")
}

// TestSampledScenarioEvidence: with heavy sampling, the validations a
// scenario drives (the hijacked session's owner) are still all emitted, so
// that what the truth expects detected is in the stream.
func TestSampledScenarioEvidence(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 9, Users: 2000, Rate: 150, SampleRate: 100, Start: testStart, Duration: 2 * time.Minute,
		Scenarios: []ScenarioSpec{{Name: "concurrent_hijack", At: 20 * time.Second}}}
	r := simulate(t, cfg)
	checkTruth(t, r)
	for i := range r.evs {
		if e := &r.evs[i]; e.Type == schemas.TypeSessionValidated && e.SampleRate != 100 && !slices.ContainsFunc(r.recs, func(rec truth.Scenario) bool { return mentions(e, rec) }) {
			t.Fatalf("background validation %s has sample_rate %v, want 100", e.ID, e.SampleRate)
		}
	}
}

// TestSampledMultiTenant runs every scenario with sampled validations and
// three tenants.
func TestSampledMultiTenant(t *testing.T) {
	t.Parallel()
	cfg := allScenarios(t, 3, 5*time.Minute)
	cfg.SampleRate, cfg.Tenants = 10, 3
	r := simulate(t, cfg)
	checkStream(t, r)
	tenants := map[string]int{}
	sampled := 0
	for i := range r.evs {
		e := &r.evs[i]
		tenants[e.Tenant]++
		if e.UserID != "" && e.Tenant == "" {
			t.Fatalf("event %s of user %s has no tenant", e.ID, e.UserID)
		}
		if e.UserID != "" && !strings.HasSuffix(e.Tenant, fmt.Sprintf("%02d", userNumber(t, e.UserID)%3+1)) {
			t.Fatalf("event %s: user %s in tenant %s", e.ID, e.UserID, e.Tenant)
		}
		if e.Type == schemas.TypeSessionValidated && e.SampleRate == 10 {
			sampled++
		} else if e.SampleRate != 1 {
			t.Fatalf("event %s (%s) has sample_rate %v", e.ID, e.Type, e.SampleRate)
		}
	}
	for _, tn := range []string{"tenant-01", "tenant-02", "tenant-03"} {
		if tenants[tn] == 0 {
			t.Errorf("no events in %s (%v)", tn, tenants)
		}
	}
	// An instance stays inside one tenant, except the service-wide ones.
	for _, rec := range r.recs {
		wide := len(rec.UserIDs)+len(rec.SessionIDs)+len(rec.FamilyIDs)+len(rec.IPs) == 0
		if wide != (rec.Tenant == "") {
			t.Errorf("%s: tenant %q with %d users, %d ips: want a tenant exactly when it names subjects", rec.Instance, rec.Tenant, len(rec.UserIDs), len(rec.IPs))
		}
		for _, u := range rec.UserIDs {
			if want := fmt.Sprintf("%02d", userNumber(t, u)%3+1); !strings.HasSuffix(rec.Tenant, want) {
				t.Errorf("%s (tenant %s) names user %s of tenant-%s", rec.Instance, rec.Tenant, u, want)
			}
		}
	}
	// Unsampled, validations are about 90% of the stream.
	if sampled == 0 || sampled > len(r.evs)/2 {
		t.Errorf("%d of %d events are sampled validations, want about one in ten validations", sampled, len(r.evs))
	}
	checkTruth(t, r)
}

// TestOverlappingScenarios runs scenarios on top of each other: the run
// must still end (a scenario taking its victim during an outage must not
// stall), with valid events and every instance reported.
func TestOverlappingScenarios(t *testing.T) {
	f := func(name string, cfg Config) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			type result struct {
				r   *run
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := generate(cfg)
				done <- result{r, err}
			}()
			deadline := time.NewTimer(time.Minute)
			defer deadline.Stop()
			var res result
			select {
			case res = <-done:
			case <-deadline.C:
				t.Fatal("the simulation did not finish within a minute: a scenario is stuck")
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			checkStream(t, res.r)
			if want := instances(cfg); !reflect.DeepEqual(countScenarios(res.r.recs), want) {
				t.Errorf("truth records by scenario %v, want %v", countScenarios(res.r.recs), want)
			}
			for _, rec := range res.r.recs {
				if rec.Events == 0 {
					t.Errorf("%s emitted no events (%s)", rec.Instance, rec.Note)
				}
			}
		})
	}
	var all []ScenarioSpec
	for _, name := range ScenarioNames() {
		all = append(all, ScenarioSpec{Name: name, At: 20 * time.Second})
	}
	f("all at once", Config{Seed: 5, Users: 3000, Rate: 150, Start: testStart, Duration: 150 * time.Second, Scenarios: all})
	// Short-lived sessions have few token generations: the theft must
	// refresh its victim, and the store is down.
	f("theft during an outage", Config{Seed: 5, Users: 500, Rate: 100, Start: testStart, Duration: 3 * time.Minute,
		RefreshInterval: time.Minute, IdleTimeout: 2 * time.Minute, AbsoluteLifetime: 3 * time.Minute,
		Scenarios: []ScenarioSpec{{Name: "reconnect_storm", At: 10 * time.Second}, {Name: "token_theft_replay", At: 12 * time.Second}}})
}

func userNumber(t *testing.T, id string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(id, "user-"))
	if err != nil {
		t.Fatalf("user id %q: %v", id, err)
	}
	return n
}

func TestKey(t *testing.T) {
	for _, c := range []struct {
		e    schemas.Event
		want string
	}{
		{schemas.Event{FamilyID: "f", SessionID: "s", UserID: "u", IP: "192.0.2.1"}, "f"},
		{schemas.Event{SessionID: "s", UserID: "u", IP: "192.0.2.1"}, "s"},
		{schemas.Event{UserID: "u", IP: "192.0.2.1"}, "u"},
		{schemas.Event{IP: "192.0.2.1"}, "192.0.2.1"},
	} {
		if got := Key(&c.e); got != c.want {
			t.Errorf("Key(%+v) = %q, want %q", c.e, got, c.want)
		}
	}
}
