package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/sessionapi"
	"github.com/vigilhq/vigil/sim/truth"
)

// feed pulls a simulator's events on the test goroutine and keeps copies.
type feed struct {
	s    *Simulator
	evs  []schemas.Event
	recs []truth.Scenario // WithTruth runs inside Next and Close, on the test goroutine
	done bool
}

func newFeed(t *testing.T, cfg Config) *feed {
	t.Helper()
	f := &feed{}
	s, err := New(cfg, WithTruth(func(r truth.Scenario) { f.recs = append(f.recs, r) }), WithWallClock(testWall))
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	return f
}

// next pulls one event; false at the end of the run.
func (f *feed) next() bool {
	if f.done {
		return false
	}
	e := f.s.Next()
	if e == nil {
		f.done = true
		f.s.Close()
		return false
	}
	f.evs = append(f.evs, *e)
	return true
}

// until pulls events until one matches (its index) or the run ends (-1).
func (f *feed) until(match func(e *schemas.Event) bool) int {
	for f.next() {
		if match(&f.evs[len(f.evs)-1]) {
			return len(f.evs) - 1
		}
	}
	return -1
}

// find returns the first event from index from on that matches, pulling
// more events as needed; -1 if the run ends first.
func (f *feed) find(from int, match func(e *schemas.Event) bool) int {
	for i := from; i < len(f.evs); i++ {
		if match(&f.evs[i]) {
			return i
		}
	}
	return f.until(match)
}

// toEnd pulls the rest of the run.
func (f *feed) toEnd() {
	for f.next() {
	}
}

// during runs fn on another goroutine while the event loop keeps going,
// and returns once fn has returned.
func (f *feed) during(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if !f.next() {
			<-done
			return
		}
	}
}

// revoke calls Revoke from another goroutine while events keep flowing.
func (f *feed) revoke(r sessionapi.Request) (o sessionapi.Outcome, enforced bool) {
	f.during(func() { o, enforced = f.s.Revoke(r, time.Now()) })
	return o, enforced
}

// liveAfter matches a successful validation after t: its session is live
// and in use right now.
func liveAfter(t time.Time) func(e *schemas.Event) bool {
	return func(e *schemas.Event) bool {
		return !e.Time.Before(t) && e.Type == schemas.TypeSessionValidated && e.Outcome == schemas.OutcomeSuccess
	}
}

func isVigilRevocation(e *schemas.Event) bool {
	return e.Type == schemas.TypeSessionRevoked && e.Actor == schemas.ActorVigil
}

// succeeds reports whether e is a successful use of its session.
func succeeds(e *schemas.Event) bool {
	switch e.Type {
	case schemas.TypeSessionValidated:
		return e.Outcome == schemas.OutcomeSuccess
	case schemas.TypeTokenRefreshed, schemas.TypeSessionElevated:
		return true
	}
	return false
}

// refusedAsRevoked reports whether e is a use of its session refused
// because it was revoked.
func refusedAsRevoked(e *schemas.Event) bool {
	return e.Reason == "revoked" && (e.Type == schemas.TypeSessionValidated && e.Outcome == schemas.OutcomeFailure || e.Type == schemas.TypeTokenRefreshFailed)
}

// TestRevokeStopsSession revokes a live session by session, family and user
// while the simulator runs: the revocation is enforced, shows in the stream
// as session.revoked by vigil, and the session never succeeds again.
func TestRevokeStopsSession(t *testing.T) {
	f := func(scope string) {
		t.Run(scope, func(t *testing.T) {
			fd := newFeed(t, Config{Seed: 11, Users: 3000, Rate: 200, Start: testStart, Duration: 4 * time.Minute})
			i := fd.until(liveAfter(testStart.Add(time.Minute)))
			if i < 0 {
				t.Fatal("no live session")
			}
			live := fd.evs[i]
			req := sessionapi.Request{ID: "act-1", Scope: scope, Tenant: live.Tenant, Reason: "token_reuse", RequestedAt: live.Time}
			switch scope {
			case sessionapi.ScopeSession:
				req.SessionID = live.SessionID
			case sessionapi.ScopeFamily:
				req.FamilyID = live.FamilyID
			case sessionapi.ScopeUser:
				req.UserID = live.UserID
			}
			from := len(fd.evs)
			o, enforced := fd.revoke(req)
			if o != sessionapi.Revoked || !enforced {
				t.Fatalf("Revoke(%s %s) = %s, enforced %v; want revoked, enforced", scope, live.SessionID, o, enforced)
			}
			again := req
			again.ID = "act-2"
			o, enforced = fd.s.Revoke(again, time.Now())
			switch scope {
			case sessionapi.ScopeUser: // the user is still there
				if o != sessionapi.Revoked || !enforced {
					t.Errorf("second Revoke = %s, enforced %v; want revoked, enforced", o, enforced)
				}
			default:
				if o != sessionapi.AlreadyRevoked && o != sessionapi.NotFound || o == sessionapi.AlreadyRevoked && !enforced {
					t.Errorf("second Revoke = %s, enforced %v; want already_revoked (enforced) or not_found", o, enforced)
				}
			}

			// The revocation shows promptly: session.revoked by vigil,
			// with the request's reason.
			answered := len(fd.evs)
			j := fd.find(from, func(e *schemas.Event) bool { return isVigilRevocation(e) && e.SessionID == live.SessionID })
			if j < 0 {
				t.Fatalf("no session.revoked by vigil of %s", live.SessionID)
			}
			if j-answered > 10 {
				t.Errorf("session.revoked came %d events after Revoke returned, want it applied at once", j-answered)
			}
			if e := fd.evs[j]; e.Reason != "token_reuse" || e.UserID != live.UserID || e.FamilyID != live.FamilyID {
				t.Errorf("session.revoked %+v, want reason token_reuse for user %s, family %s", e, live.UserID, live.FamilyID)
			}

			// The client's next use is refused; after that the session is
			// gone.
			k := fd.find(j+1, func(e *schemas.Event) bool { return e.SessionID == live.SessionID })
			if k < 0 {
				t.Fatalf("session %s, in use when revoked, was never used again", live.SessionID)
			}
			if e := fd.evs[k]; !refusedAsRevoked(&e) {
				t.Fatalf("first event of %s after its revocation: %s %s %s, want refused as revoked", live.SessionID, e.Type, e.Outcome, e.Reason)
			}
			if scope != sessionapi.ScopeUser {
				again.ID = "act-3"
				if o, enforced := fd.s.Revoke(again, time.Now()); o != sessionapi.NotFound || enforced {
					t.Errorf("Revoke after the session ended = %s, enforced %v; want not_found", o, enforced)
				}
			}
			fd.toEnd()

			revokedAt := map[string]int{} // session → its session.revoked by vigil
			for n := from; n < len(fd.evs); n++ {
				e := &fd.evs[n]
				if isVigilRevocation(e) {
					if _, dup := revokedAt[e.SessionID]; dup {
						t.Errorf("session %s revoked twice", e.SessionID)
					}
					revokedAt[e.SessionID] = n
					if scope == sessionapi.ScopeUser && e.UserID != live.UserID || scope != sessionapi.ScopeUser && e.SessionID != live.SessionID {
						t.Errorf("session.revoked of %s (user %s): not a subject of the %s revocation", e.SessionID, e.UserID, scope)
					}
					continue
				}
				if at, ok := revokedAt[e.SessionID]; ok && n > at && succeeds(e) {
					t.Errorf("event %s (%s, %s) succeeds on %s after its revocation", e.ID, e.Type, e.Outcome, e.SessionID)
				}
			}
			if st := fd.s.Stats(); st.Revocations != int64(len(revokedAt)) {
				t.Errorf("Stats().Revocations = %d, want %d", st.Revocations, len(revokedAt))
			}
		})
	}
	f(sessionapi.ScopeSession)
	f(sessionapi.ScopeFamily)
	f(sessionapi.ScopeUser)
}

// TestRevokeMany revokes every session seen in use, from another goroutine
// while the simulator runs: each gets exactly one session.revoked by vigil
// and none is ever used successfully afterwards.
func TestRevokeMany(t *testing.T) {
	fd := newFeed(t, Config{Seed: 16, Users: 3000, Rate: 250, Start: testStart, Duration: 3 * time.Minute})
	fd.until(func(e *schemas.Event) bool { return e.Time.After(testStart.Add(time.Minute)) })
	ended := map[string]bool{}
	var ids []string
	for i := range fd.evs {
		e := &fd.evs[i]
		switch {
		case e.Type == schemas.TypeSessionLogout || e.Type == schemas.TypeSessionExpired || e.Type == schemas.TypeSessionRevoked || e.Type == schemas.TypeTokenRefreshFailed && e.Reason == "expired":
			ended[e.SessionID] = true
		case e.Type == schemas.TypeSessionValidated && e.Outcome == schemas.OutcomeSuccess && !slices.Contains(ids, e.SessionID):
			ids = append(ids, e.SessionID)
		}
	}
	from := len(fd.evs)
	revoked := map[string]bool{}
	fd.during(func() {
		for n, id := range ids {
			o, enforced := fd.s.Revoke(sessionapi.Request{ID: fmt.Sprint("act-", n), Scope: sessionapi.ScopeSession, SessionID: id}, time.Now())
			switch {
			case o == sessionapi.Revoked && enforced:
				revoked[id] = true
			case o == sessionapi.NotFound: // it ended (maybe since it was seen)
			default:
				t.Errorf("Revoke(%s) = %s, enforced %v", id, o, enforced)
			}
		}
	})
	fd.toEnd()
	for id := range revoked {
		if ended[id] {
			t.Errorf("session %s ended before the revocations, yet Revoke found it", id)
		}
	}
	if len(revoked) < 500 {
		t.Fatalf("only %d of %d sessions revoked", len(revoked), len(ids))
	}
	at := map[string]int{}
	for n := from; n < len(fd.evs); n++ {
		e := &fd.evs[n]
		if isVigilRevocation(e) {
			if !revoked[e.SessionID] {
				t.Errorf("session.revoked of %s, which was not revoked", e.SessionID)
			}
			if _, dup := at[e.SessionID]; dup {
				t.Errorf("session %s revoked twice", e.SessionID)
			}
			at[e.SessionID] = n
			continue
		}
		if i, ok := at[e.SessionID]; ok && n > i && succeeds(e) {
			t.Errorf("%s (%s %s) succeeds on %s, revoked at event %d", e.ID, e.Type, e.Outcome, e.SessionID, i)
		}
	}
	if len(at) != len(revoked) {
		t.Errorf("%d session.revoked events for %d revoked sessions", len(at), len(revoked))
	}
}

// TestRevokeNotFound: unknown subjects, sessions that ended and unknown
// scopes are not found.
func TestRevokeNotFound(t *testing.T) {
	fd := newFeed(t, Config{Seed: 12, Users: 2000, Rate: 200, Start: testStart, Duration: 2 * time.Minute})
	i := fd.until(func(e *schemas.Event) bool { return e.Type == schemas.TypeSessionLogout })
	if i < 0 {
		t.Fatal("no logout")
	}
	ended := fd.evs[i]
	f := func(name string, r sessionapi.Request) {
		t.Run(name, func(t *testing.T) {
			r.ID = "act-" + name
			if o, enforced := fd.revoke(r); o != sessionapi.NotFound || enforced {
				t.Errorf("Revoke(%+v) = %s, enforced %v; want not_found", r, o, enforced)
			}
		})
	}
	f("unknown session", sessionapi.Request{Scope: sessionapi.ScopeSession, SessionID: "ses_unknown"})
	f("unknown family", sessionapi.Request{Scope: sessionapi.ScopeFamily, FamilyID: "fam_unknown"})
	f("unknown user", sessionapi.Request{Scope: sessionapi.ScopeUser, UserID: "user-unknown"})
	f("ended session", sessionapi.Request{Scope: sessionapi.ScopeSession, SessionID: ended.SessionID})
	f("ended family", sessionapi.Request{Scope: sessionapi.ScopeFamily, FamilyID: ended.FamilyID})
	f("session id as family", sessionapi.Request{Scope: sessionapi.ScopeFamily, FamilyID: ended.SessionID})
	f("unknown scope", sessionapi.Request{Scope: "tenant", SessionID: ended.SessionID, UserID: ended.UserID})
	fd.toEnd()
	for n := range fd.evs {
		if isVigilRevocation(&fd.evs[n]) {
			t.Errorf("%s: a revocation that found nothing revoked %s", fd.evs[n].ID, fd.evs[n].SessionID)
		}
	}
}

// TestRevokeStopsTheft revokes the family a token thief replays: the
// attacker's next attempts are refused as revoked and the instance ends.
func TestRevokeStopsTheft(t *testing.T) {
	fd := newFeed(t, Config{Seed: 13, Users: 3000, Rate: 200, Start: testStart, Duration: 3 * time.Minute,
		Scenarios: []ScenarioSpec{{Name: "token_theft_replay", At: 30 * time.Second, Count: 1}}})
	i := fd.until(func(e *schemas.Event) bool { return e.Type == schemas.TypeTokenRefreshFailed && e.Reason == "reused" })
	if i < 0 {
		t.Fatal("no token refused as reused")
	}
	reused := fd.evs[i]
	from := len(fd.evs)
	if o, enforced := fd.revoke(sessionapi.Request{ID: "act-1", Scope: sessionapi.ScopeFamily, FamilyID: reused.FamilyID, Reason: "token_reuse"}); o != sessionapi.Revoked || !enforced {
		t.Fatalf("Revoke(family %s) = %s, enforced %v; want revoked, enforced", reused.FamilyID, o, enforced)
	}
	fd.toEnd()
	rev := -1
	for n := from; n < len(fd.evs); n++ {
		if e := &fd.evs[n]; isVigilRevocation(e) && e.FamilyID == reused.FamilyID {
			rev = n
			break
		}
	}
	if rev < 0 {
		t.Fatalf("no session.revoked by vigil of family %s", reused.FamilyID)
	}
	revokedAt := fd.evs[rev].Time
	refused := 0
	for n := rev + 1; n < len(fd.evs); n++ {
		e := &fd.evs[n]
		if e.FamilyID != reused.FamilyID {
			continue
		}
		if succeeds(e) {
			t.Errorf("event %s (%s from %s) succeeds on the revoked family", e.ID, e.Type, e.IP)
		}
		if e.IP == reused.IP {
			if !refusedAsRevoked(e) {
				t.Errorf("attacker's %s %s %s after the revocation, want refused as revoked", e.Type, e.Outcome, e.Reason)
			}
			refused++
		}
	}
	if refused == 0 {
		t.Error("the attacker never tried again after the revocation")
	}
	if len(fd.recs) != 1 {
		t.Fatalf("%d truth records, want 1", len(fd.recs))
	}
	rec := fd.recs[0]
	if rec.End.Before(revokedAt) || rec.End.After(revokedAt.Add(5*time.Second)) {
		t.Errorf("instance ended at %s, want within 5s after the revocation at %s", rec.End, revokedAt)
	}
	if len(rec.FamilyIDs) != 1 || rec.FamilyIDs[0] != reused.FamilyID {
		t.Errorf("truth families %v, want [%s]", rec.FamilyIDs, reused.FamilyID)
	}
}

// TestRevokeNotEnforced: the service accepts revocations of a
// revocation_not_enforced victim but keeps validating it until the
// scenario ends.
func TestRevokeNotEnforced(t *testing.T) {
	fd := newFeed(t, Config{Seed: 14, Users: 3000, Rate: 200, Start: testStart, Duration: 2 * time.Minute,
		Scenarios: []ScenarioSpec{{Name: "revocation_not_enforced", At: 30 * time.Second, Count: 1}}})
	i := fd.until(func(e *schemas.Event) bool {
		return e.Type == schemas.TypeSessionRevoked && e.Actor == schemas.ActorAdmin
	})
	if i < 0 {
		t.Fatal("no session revoked by an admin")
	}
	admin := fd.evs[i]
	// Let it run past the propagation grace first.
	if fd.until(func(e *schemas.Event) bool { return e.Time.After(admin.Time.Add(10 * time.Second)) }) < 0 {
		t.Fatal("the run ended")
	}
	from := len(fd.evs)
	f := func(r sessionapi.Request, want sessionapi.Outcome) {
		t.Run(r.Scope, func(t *testing.T) {
			r.ID = "act-" + r.Scope
			if o, enforced := fd.revoke(r); o != want || enforced {
				t.Errorf("Revoke(%s) = %s, enforced %v; want %s, not enforced", r.Scope, o, enforced, want)
			}
		})
	}
	// The admin revoked it already; the user is a new subject.
	f(sessionapi.Request{Scope: sessionapi.ScopeSession, SessionID: admin.SessionID}, sessionapi.AlreadyRevoked)
	f(sessionapi.Request{Scope: sessionapi.ScopeFamily, FamilyID: admin.FamilyID}, sessionapi.AlreadyRevoked)
	f(sessionapi.Request{Scope: sessionapi.ScopeUser, UserID: admin.UserID}, sessionapi.Revoked)
	fd.toEnd()
	if len(fd.recs) != 1 {
		t.Fatalf("%d truth records, want 1", len(fd.recs))
	}
	rec := fd.recs[0]
	var ok int
	var last time.Time
	for n := from; n < len(fd.evs); n++ {
		e := &fd.evs[n]
		if e.SessionID != admin.SessionID || e.Type != schemas.TypeSessionValidated || e.Time.After(rec.End) {
			continue
		}
		if e.Outcome != schemas.OutcomeSuccess {
			t.Errorf("validation %s of %s failed (%s) before the scenario ended", e.ID, e.SessionID, e.Reason)
			continue
		}
		ok++
		last = e.Time
	}
	if ok < 5 || rec.End.Sub(last) > 3*time.Second {
		t.Errorf("%d successful validations after the revocations, the last at %s; want them to go on until the end at %s", ok, last, rec.End)
	}
}

// TestRevocationAPI revokes a live session through the real HTTP API,
// signed and with an idempotency key, twice.
func TestRevocationAPI(t *testing.T) {
	fd := newFeed(t, Config{Seed: 15, Users: 3000, Rate: 200, Start: testStart, Duration: 3 * time.Minute})
	var mu sync.Mutex
	var recorded []truth.Revocation
	cfg := sessionapi.DefaultConfig()
	cfg.BearerToken, cfg.HMACKey = "s3cret-token", "hmac-key"
	srv, err := sessionapi.New(cfg, fd.s, sessionapi.WithRecorder(func(r truth.Revocation) {
		mu.Lock()
		defer mu.Unlock()
		recorded = append(recorded, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})

	i := fd.until(liveAfter(testStart.Add(time.Minute)))
	if i < 0 {
		t.Fatal("no live session")
	}
	live := fd.evs[i]
	body, err := json.Marshal(sessionapi.Request{ID: "act-1", Scope: sessionapi.ScopeSession, Tenant: live.Tenant,
		UserID: live.UserID, SessionID: live.SessionID, Reason: "session_hijack", AnomalyID: "an-1", RequestedAt: live.Time})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		status   int
		replayed string
		resp     sessionapi.Response
		err      error
	}
	post := func() (a answer) {
		req, err := http.NewRequest(http.MethodPost, "http://"+srv.Addr()+sessionapi.Path, bytes.NewReader(body))
		if err != nil {
			return answer{err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+cfg.BearerToken)
		req.Header.Set(sessionapi.HeaderIdempotencyKey, "act-1")
		req.Header.Set(sessionapi.HeaderSignature, sessionapi.Sign([]byte(cfg.HMACKey), body))
		res, err := client.Do(req)
		if err != nil {
			return answer{err: err}
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err == nil {
			err = json.Unmarshal(b, &a.resp)
		}
		a.status, a.replayed, a.err = res.StatusCode, res.Header.Get(sessionapi.HeaderIdempotentReplay), err
		return a
	}
	var first, second answer
	fd.during(func() { first = post() })
	fd.during(func() { second = post() })
	want := sessionapi.Response{ID: "act-1", Status: sessionapi.StatusRevoked, Enforced: true}
	if first.err != nil || first.status != http.StatusCreated || first.replayed != "" || first.resp != want {
		t.Errorf("first POST: %d %+v (replayed %q, err %v); want 201 %+v", first.status, first.resp, first.replayed, first.err, want)
	}
	if second.err != nil || second.status != http.StatusCreated || second.replayed != "true" || second.resp != want {
		t.Errorf("repeated POST: %d %+v (replayed %q, err %v); want 201 %+v replayed", second.status, second.resp, second.replayed, second.err, want)
	}
	fd.toEnd()

	mu.Lock()
	defer mu.Unlock()
	if len(recorded) != 1 {
		t.Fatalf("%d revocations recorded, want 1: %+v", len(recorded), recorded)
	}
	if r := recorded[0]; r.ID != "act-1" || r.Scope != sessionapi.ScopeSession || r.SessionID != live.SessionID || !r.Enforced || r.Tenant != live.Tenant {
		t.Errorf("recorded %+v, want the enforced session revocation of %s", r, live.SessionID)
	}
	n := 0
	for k := range fd.evs {
		if e := &fd.evs[k]; e.SessionID == live.SessionID && e.Type == schemas.TypeSessionRevoked {
			n++
			if e.Actor != schemas.ActorVigil || e.Reason != "session_hijack" {
				t.Errorf("session.revoked of %s by %s (%s), want by vigil for session_hijack", e.SessionID, e.Actor, e.Reason)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d session.revoked events for %s, want exactly 1", n, live.SessionID)
	}
	if st := srv.Stats(); st.Revoked != 1 || st.Replayed != 1 {
		t.Errorf("server stats %+v, want 1 revoked and 1 replayed", st)
	}
}
