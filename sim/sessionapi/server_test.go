package sessionapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/sim/truth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeTarget counts Revoke calls and answers with a fixed outcome; hold, if
// set, runs inside Revoke (to block it or to wait for other requests).
type fakeTarget struct {
	outcome  Outcome
	enforced bool
	hold     func()

	mu    sync.Mutex
	calls []Request
	at    []time.Time
}

func (f *fakeTarget) Revoke(r Request, receivedAt time.Time) (Outcome, bool) {
	if f.hold != nil {
		f.hold()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r)
	f.at = append(f.at, receivedAt)
	return f.outcome, f.enforced
}

func (f *fakeTarget) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// recorder collects truth records.
type recorder struct {
	mu   sync.Mutex
	recs []truth.Revocation
}

func (r *recorder) record(v truth.Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, v)
}

func (r *recorder) all() []truth.Revocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]truth.Revocation(nil), r.recs...)
}

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newServer(t *testing.T, cfg Config, target Target, opts ...Option) *Server {
	t.Helper()
	opts = append([]Option{WithClock(func() time.Time { return fixedNow })}, opts...)
	s, err := New(cfg, target, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func reqBody(id, scope, subject string) string {
	field := map[string]string{ScopeSession: "session_id", ScopeFamily: "family_id", ScopeUser: "user_id"}[scope]
	return fmt.Sprintf(`{"id":%q,"scope":%q,"tenant":"t1",%q:%q,"reason":"token_reuse","anomaly_id":"an-1","requested_at":"2026-03-01T11:59:59Z"}`,
		id, scope, field, subject)
}

// do sends a request to h; hdr holds header name/value pairs. The
// Idempotency-Key is set from key unless key is empty.
func do(h http.Handler, method, path, key, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		r.Header.Set(HeaderIdempotencyKey, key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func post(h http.Handler, key, body string, hdr ...string) *httptest.ResponseRecorder {
	return do(h, http.MethodPost, Path, key, body, hdr...)
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("error body %q is not {\"error\":...}: %v", w.Body.String(), err)
	}
	return e.Error
}

func TestRepeatedKeyRevokesOnceAndReplays(t *testing.T) {
	target := &fakeTarget{outcome: Revoked, enforced: true}
	var rec recorder
	s := newServer(t, DefaultConfig(), target, WithRecorder(rec.record))
	h := s.Handler()
	body := reqBody("act-1", ScopeFamily, "fam-9")

	first := post(h, "act-1", body)
	if first.Code != http.StatusCreated {
		t.Fatalf("first: status %d body %s", first.Code, first.Body)
	}
	if first.Header().Get(HeaderIdempotentReplay) != "" {
		t.Error("first response marked as replayed")
	}
	if ct := first.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var resp Response
	if err := json.Unmarshal(first.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp != (Response{ID: "act-1", Status: StatusRevoked, Enforced: true}) {
		t.Errorf("response %+v", resp)
	}

	for range 3 {
		again := post(h, "act-1", body)
		if again.Code != first.Code || again.Body.String() != first.Body.String() {
			t.Errorf("replay: %d %s, want %d %s", again.Code, again.Body, first.Code, first.Body)
		}
		if got := again.Header().Get(HeaderIdempotentReplay); got != "true" {
			t.Errorf("replay header %q, want true", got)
		}
	}
	if n := target.count(); n != 1 {
		t.Errorf("Revoke called %d times, want 1", n)
	}
	got := target.calls[0]
	if got.ID != "act-1" || got.Scope != ScopeFamily || got.FamilyID != "fam-9" || got.Tenant != "t1" ||
		!got.RequestedAt.Equal(time.Date(2026, 3, 1, 11, 59, 59, 0, time.UTC)) || !target.at[0].Equal(fixedNow) {
		t.Errorf("Revoke got %+v at %s", got, target.at[0])
	}

	recs := rec.all()
	want := truth.Revocation{
		Record: truth.KindRevocation, ReceivedAt: fixedNow, ID: "act-1", Scope: ScopeFamily, Tenant: "t1",
		FamilyID: "fam-9", Reason: "token_reuse", AnomalyID: "an-1",
		RequestedAt: time.Date(2026, 3, 1, 11, 59, 59, 0, time.UTC), Enforced: true, Outcome: StatusRevoked,
	}
	if len(recs) != 1 || recs[0] != want {
		t.Errorf("recorded %+v, want one %+v", recs, want)
	}
	st := s.Stats()
	if st.Received != 4 || st.Revoked != 1 || st.Replayed != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestSameKeyDifferentBody(t *testing.T) {
	target := &fakeTarget{outcome: Revoked}
	s := newServer(t, DefaultConfig(), target)
	h := s.Handler()
	if w := post(h, "k", reqBody("k", ScopeSession, "s1")); w.Code != http.StatusCreated {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	w := post(h, "k", reqBody("k", ScopeSession, "s2"))
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("different body: %d %s, want 422", w.Code, w.Body)
	}
	if msg := errorOf(t, w); !strings.Contains(msg, HeaderIdempotencyKey) {
		t.Errorf("422 message %q does not mention %s", msg, HeaderIdempotencyKey)
	}
	if w.Header().Get(HeaderIdempotentReplay) != "" {
		t.Error("422 marked as replayed")
	}
	if n := target.count(); n != 1 {
		t.Errorf("Revoke called %d times, want 1", n)
	}
	if st := s.Stats(); st.KeyConflicts != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestOutcomeMapping(t *testing.T) {
	f := func(o Outcome, enforced bool, wantCode int, wantStatus string, wantEnforced, wantRecorded bool) {
		t.Helper()
		var rec recorder
		target := &fakeTarget{outcome: o, enforced: enforced}
		s := newServer(t, DefaultConfig(), target, WithRecorder(rec.record))
		w := post(s.Handler(), "key", reqBody("a", ScopeUser, "u1"))
		if w.Code != wantCode {
			t.Fatalf("%v: status %d, want %d (%s)", o, w.Code, wantCode, w.Body)
		}
		var resp Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if want := (Response{ID: "a", Status: wantStatus, Enforced: wantEnforced}); resp != want {
			t.Errorf("%v: body %+v, want %+v", o, resp, want)
		}
		recs := rec.all()
		if wantRecorded && (len(recs) != 1 || recs[0].Enforced != wantEnforced || recs[0].UserID != "u1" || recs[0].Outcome != wantStatus) {
			t.Errorf("%v: recorded %+v", o, recs)
		}
		if !wantRecorded && len(recs) != 0 {
			t.Errorf("%v: recorded %+v, want none", o, recs)
		}
		// The replay keeps the status.
		if w2 := post(s.Handler(), "key", reqBody("a", ScopeUser, "u1")); w2.Code != wantCode || w2.Header().Get(HeaderIdempotentReplay) != "true" {
			t.Errorf("%v: replay %d %q", o, w2.Code, w2.Header().Get(HeaderIdempotentReplay))
		}
		if len(rec.all()) != len(recs) {
			t.Errorf("%v: replay recorded again", o)
		}
	}
	f(Revoked, true, http.StatusCreated, StatusRevoked, true, true)
	f(Revoked, false, http.StatusCreated, StatusRevoked, false, true)
	f(AlreadyRevoked, true, http.StatusConflict, StatusAlreadyRevoked, true, true)
	f(NotFound, true, http.StatusNotFound, StatusNotFound, false, true) // a useless revocation is evidence too
}

func TestBearerToken(t *testing.T) {
	const token = "tok-s3cret"
	cfg := DefaultConfig()
	cfg.BearerToken = token
	f := func(auth string, want int) {
		t.Helper()
		target := &fakeTarget{outcome: Revoked}
		s := newServer(t, cfg, target)
		var hdr []string
		if auth != "" {
			hdr = []string{"Authorization", auth}
		}
		w := post(s.Handler(), "k1", reqBody("k1", ScopeSession, "s1"), hdr...)
		if w.Code != want {
			t.Fatalf("Authorization %q: status %d, want %d (%s)", auth, w.Code, want, w.Body)
		}
		if want == http.StatusUnauthorized {
			if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if strings.Contains(w.Body.String(), token) {
				t.Errorf("response leaks the token: %s", w.Body)
			}
			errorOf(t, w)
			if n := target.count(); n != 0 {
				t.Errorf("Revoke called %d times", n)
			}
			if st := s.Stats(); st.Unauthorized != 1 {
				t.Errorf("stats %+v", st)
			}
		}
	}
	f("", http.StatusUnauthorized)
	f("Bearer", http.StatusUnauthorized)
	f("Bearer wrong", http.StatusUnauthorized)
	f("Bearer tok-s3cre", http.StatusUnauthorized)
	f("Bearer tok-s3cret2", http.StatusUnauthorized)
	f("Basic "+token, http.StatusUnauthorized)
	f("Bearer "+token, http.StatusCreated)
	f("bearer "+token, http.StatusCreated)
}

func TestHMACSignature(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HMACKey = "hmac-s3cret"
	body := reqBody("k1", ScopeSession, "s1")
	good := Sign([]byte(cfg.HMACKey), []byte(body))
	f := func(sig string, want int) {
		t.Helper()
		target := &fakeTarget{outcome: Revoked}
		s := newServer(t, cfg, target)
		var hdr []string
		if sig != "" {
			hdr = []string{HeaderSignature, sig}
		}
		w := post(s.Handler(), "k1", body, hdr...)
		if w.Code != want {
			t.Fatalf("signature %q: status %d, want %d (%s)", sig, w.Code, want, w.Body)
		}
		wantCalls := 1
		if want == http.StatusUnauthorized {
			wantCalls = 0
			if msg := errorOf(t, w); !strings.Contains(msg, HeaderSignature) {
				t.Errorf("message %q does not name %s", msg, HeaderSignature)
			}
			if strings.Contains(w.Body.String(), cfg.HMACKey) || strings.Contains(w.Body.String(), good) {
				t.Errorf("response leaks the key or the expected signature: %s", w.Body)
			}
			if st := s.Stats(); st.BadSignature != 1 {
				t.Errorf("stats %+v", st)
			}
		}
		if n := target.count(); n != wantCalls {
			t.Errorf("Revoke called %d times, want %d", n, wantCalls)
		}
	}
	f("", http.StatusUnauthorized)
	f("sha256=", http.StatusUnauthorized)
	f("sha256=zz", http.StatusUnauthorized)
	f(strings.TrimPrefix(good, "sha256="), http.StatusUnauthorized)
	f("md5="+strings.TrimPrefix(good, "sha256="), http.StatusUnauthorized)
	f(Sign([]byte("other key"), []byte(body)), http.StatusUnauthorized)
	f(Sign([]byte(cfg.HMACKey), []byte(body+" ")), http.StatusUnauthorized)
	f(good, http.StatusCreated)
}

func TestSign(t *testing.T) {
	// The well-known HMAC-SHA256 example.
	got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog"))
	if want := "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestAuthBeforeEverythingElse(t *testing.T) {
	// A bad token wins over a missing key, a bad body and a bad signature.
	cfg := DefaultConfig()
	cfg.BearerToken, cfg.HMACKey, cfg.ErrorRate = "t", "k", 1
	s := newServer(t, cfg, &fakeTarget{})
	if w := post(s.Handler(), "", "{", "Authorization", "Bearer x"); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("status %d, want 401 from the bearer check", w.Code)
	}
	// Right token, bad signature: 401 before the missing key is noticed.
	if w := post(s.Handler(), "", "{", "Authorization", "Bearer t"); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("status %d, want 401 from the signature check", w.Code)
	}
	// Right token and signature, no key: 400 before the injected error.
	if w := post(s.Handler(), "", "{", "Authorization", "Bearer t", HeaderSignature, Sign([]byte("k"), []byte("{"))); w.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400 for the missing key", w.Code)
	}
	// Everything right but a bad body: the injected 503 comes before decoding.
	if w := post(s.Handler(), "k", "{", "Authorization", "Bearer t", HeaderSignature, Sign([]byte("k"), []byte("{"))); w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want the injected 503", w.Code)
	}
}

func TestThrottle(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ThrottleRate, cfg.RetryAfter = 1, 2*time.Second
	target := &fakeTarget{outcome: Revoked}
	s := newServer(t, cfg, target)
	for range 3 {
		w := post(s.Handler(), "k1", reqBody("k1", ScopeSession, "s1"))
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429 (%s)", w.Code, w.Body)
		}
		if got := w.Header().Get("Retry-After"); got != "2" {
			t.Errorf("Retry-After %q, want 2", got)
		}
		errorOf(t, w)
	}
	if n := target.count(); n != 0 {
		t.Errorf("Revoke called %d times, want 0", n)
	}
	s.SetFailures(0, 0)
	w := post(s.Handler(), "k1", reqBody("k1", ScopeSession, "s1"))
	if w.Code != http.StatusCreated || w.Header().Get(HeaderIdempotentReplay) != "" {
		t.Errorf("after throttling stopped: %d replayed=%q", w.Code, w.Header().Get(HeaderIdempotentReplay))
	}
	if st := s.Stats(); st.Throttled != 3 || st.Revoked != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestInjectedErrorDoesNotConsumeKey(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ErrorRate = 1
	target := &fakeTarget{outcome: Revoked, enforced: true}
	var rec recorder
	s := newServer(t, cfg, target, WithRecorder(rec.record))
	body := reqBody("k1", ScopeUser, "u1")
	for range 3 {
		w := post(s.Handler(), "k1", body)
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503 (%s)", w.Code, w.Body)
		}
		errorOf(t, w)
	}
	if n := target.count(); n != 0 || len(rec.all()) != 0 {
		t.Fatalf("Revoke called %d times, recorded %d; want none", n, len(rec.all()))
	}
	s.SetFailures(0, 0)
	w := post(s.Handler(), "k1", body)
	if w.Code != http.StatusCreated || w.Header().Get(HeaderIdempotentReplay) != "" {
		t.Fatalf("after failures stopped: %d replayed=%q (%s)", w.Code, w.Header().Get(HeaderIdempotentReplay), w.Body)
	}
	if n := target.count(); n != 1 || len(rec.all()) != 1 {
		t.Errorf("Revoke called %d times, recorded %d; want 1 and 1", n, len(rec.all()))
	}
	if st := s.Stats(); st.InjectedErrors != 3 || st.Revoked != 1 || st.Received != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestInjectedFailuresAreDeterministic(t *testing.T) {
	run := func(seed uint64) string {
		cfg := DefaultConfig()
		cfg.ErrorRate, cfg.ThrottleRate, cfg.Seed = 0.3, 0.3, seed
		s := newServer(t, cfg, &fakeTarget{outcome: Revoked})
		var codes []string
		for i := range 60 {
			key := fmt.Sprintf("k%d", i)
			codes = append(codes, fmt.Sprint(post(s.Handler(), key, reqBody(key, ScopeSession, "s")).Code))
		}
		return strings.Join(codes, ",")
	}
	a, b := run(7), run(7)
	if a != b {
		t.Fatalf("same seed, different failures:\n%s\n%s", a, b)
	}
	for _, code := range []string{"201", "429", "503"} {
		if !strings.Contains(a, code) {
			t.Errorf("no %s in %s", code, a)
		}
	}
	if c := run(8); c == a {
		t.Errorf("seeds 7 and 8 injected the same failures: %s", a)
	}
}

func TestBadRequests(t *testing.T) {
	f := func(key, body string, wantCode int, wantInMsg string) {
		t.Helper()
		target := &fakeTarget{outcome: Revoked}
		s := newServer(t, DefaultConfig(), target)
		w := post(s.Handler(), key, body)
		if w.Code != wantCode {
			t.Fatalf("body %.60q: status %d, want %d (%s)", body, w.Code, wantCode, w.Body)
		}
		if msg := errorOf(t, w); !strings.Contains(msg, wantInMsg) {
			t.Errorf("body %.60q: message %q does not contain %q", body, msg, wantInMsg)
		}
		if n := target.count(); n != 0 {
			t.Errorf("Revoke called %d times", n)
		}
		if st := s.Stats(); st.BadRequest != 1 {
			t.Errorf("stats %+v", st)
		}
		// A rejected request does not consume its (valid) key.
		if key != "" && len(key) <= 256 {
			if w := post(s.Handler(), key, reqBody("x", ScopeSession, "s")); w.Code != http.StatusCreated || w.Header().Get(HeaderIdempotentReplay) != "" {
				t.Errorf("key %q consumed by a rejected request: %d", key, w.Code)
			}
		}
	}
	f("", reqBody("a", ScopeSession, "s"), http.StatusBadRequest, HeaderIdempotencyKey)
	f(strings.Repeat("k", 257), reqBody("a", ScopeSession, "s"), http.StatusBadRequest, HeaderIdempotencyKey)
	f("k", "", http.StatusBadRequest, "empty")
	f("k", "{", http.StatusBadRequest, "JSON")
	f("k", "{not json}", http.StatusBadRequest, "malformed")
	f("k", "[]", http.StatusBadRequest, "object")
	f("k", `{"id":"a","scope":"session","session_id":"s","bogus":1}`, http.StatusBadRequest, `"bogus"`)
	f("k", `{"id":"a","scope":"session","session_id":"s"} {}`, http.StatusBadRequest, "after the JSON object")
	f("k", `{"id":7,"scope":"session","session_id":"s"}`, http.StatusBadRequest, "id")
	f("k", `{"id":"a","scope":"session","session_id":"s","requested_at":"yesterday"}`, http.StatusBadRequest, "yesterday")
	f("k", `{"scope":"session","session_id":"s"}`, http.StatusBadRequest, "id is required")
	f("k", `{"id":"a","session_id":"s"}`, http.StatusBadRequest, "scope")
	f("k", `{"id":"a","scope":"tenant","session_id":"s"}`, http.StatusBadRequest, "scope")
	f("k", `{"id":"a","scope":"session","user_id":"u"}`, http.StatusBadRequest, "session_id")
	f("k", `{"id":"a","scope":"family","session_id":"s"}`, http.StatusBadRequest, "family_id")
	f("k", `{"id":"a","scope":"user","family_id":"f"}`, http.StatusBadRequest, "user_id")
	f("k", `{"id":"a","scope":"session","session_id":"s","reason":"`+strings.Repeat("x", MaxBodyBytes)+`"}`,
		http.StatusRequestEntityTooLarge, "larger than")
}

func TestRouting(t *testing.T) {
	s := newServer(t, DefaultConfig(), &fakeTarget{})
	f := func(method, path string, want int) {
		t.Helper()
		w := do(s.Handler(), method, path, "k", reqBody("a", ScopeSession, "s"))
		if w.Code != want {
			t.Fatalf("%s %s: %d, want %d", method, path, w.Code, want)
		}
		errorOf(t, w)
		if want == http.StatusMethodNotAllowed {
			if got := w.Header().Get("Allow"); got != http.MethodPost {
				t.Errorf("Allow %q", got)
			}
		}
	}
	f(http.MethodGet, Path, http.StatusMethodNotAllowed)
	f(http.MethodPut, Path, http.StatusMethodNotAllowed)
	f(http.MethodDelete, Path, http.StatusMethodNotAllowed)
	f(http.MethodPost, "/", http.StatusNotFound)
	f(http.MethodPost, "/revocations/x", http.StatusNotFound)
	f(http.MethodGet, "/healthz", http.StatusNotFound)
	if st := s.Stats(); st.Received != 0 {
		t.Errorf("stats %+v", st)
	}
}

// client returns an HTTP client with its own transport, closed at cleanup.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func start(t *testing.T, cfg Config, target Target, opts ...Option) *Server {
	t.Helper()
	s := newServer(t, cfg, target, opts...)
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func send(c *http.Client, addr, key, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+Path, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set(HeaderIdempotencyKey, key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// waitFor spins (yielding, not sleeping) until cond holds or t's context ends.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx := t.Context()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatal("condition never held")
		}
		runtime.Gosched()
	}
}

func TestConcurrentSameKeyRevokesOnce(t *testing.T) {
	const n = 20
	target := &fakeTarget{outcome: Revoked, enforced: true}
	var rec recorder
	s := start(t, DefaultConfig(), target, WithRecorder(rec.record))
	// Revoke waits until every request has arrived, so the others pile up
	// behind the first one.
	target.hold = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for s.Stats().Received < n && ctx.Err() == nil {
			runtime.Gosched()
		}
	}
	c := client(t)
	body := reqBody("act-7", ScopeSession, "s7")
	type result struct {
		code     int
		replayed string
		body     string
		err      error
	}
	results := make(chan result, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-gate
			resp, b, err := send(c, s.Addr(), "act-7", body)
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{code: resp.StatusCode, replayed: resp.Header.Get(HeaderIdempotentReplay), body: string(b)}
		})
	}
	close(gate)
	wg.Wait()
	close(results)
	var replays int
	var bodies = map[string]int{}
	for r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.code != http.StatusCreated {
			t.Errorf("status %d (%s)", r.code, r.body)
		}
		if r.replayed == "true" {
			replays++
		}
		bodies[r.body]++
	}
	if got := target.count(); got != 1 {
		t.Errorf("Revoke called %d times, want 1", got)
	}
	if replays != n-1 || len(bodies) != 1 {
		t.Errorf("%d replays (want %d), %d distinct bodies (want 1)", replays, n-1, len(bodies))
	}
	if len(rec.all()) != 1 {
		t.Errorf("recorded %d, want 1", len(rec.all()))
	}
	if st := s.Stats(); st.Received != n || st.Revoked != 1 || st.Replayed != n-1 {
		t.Errorf("stats %+v", st)
	}
}

func TestStartAddrShutdown(t *testing.T) {
	target := &fakeTarget{outcome: Revoked}
	s := newServer(t, DefaultConfig(), target)
	if s.Addr() != "" {
		t.Errorf("Addr before Start = %q", s.Addr())
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	addr := s.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Errorf("Addr = %q", addr)
	}
	c := client(t)
	resp, b, err := send(c, addr, "k", reqBody("k", ScopeSession, "s"))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %v %v %s", err, resp, b)
	}
	c.CloseIdleConnections()
	for range 2 {
		if err := s.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	if err := s.Start(t.Context()); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Start after Shutdown: %v, want ErrServerClosed", err)
	}
	if _, _, err := send(client(t), addr, "k2", reqBody("k2", ScopeSession, "s")); err == nil {
		t.Error("server still answering after Shutdown")
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	s := newServer(t, DefaultConfig(), &fakeTarget{})
	for range 2 {
		if err := s.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
}

func TestStartListenError(t *testing.T) {
	a := start(t, DefaultConfig(), &fakeTarget{})
	cfg := DefaultConfig()
	cfg.Listen = a.Addr() // taken
	b := newServer(t, cfg, &fakeTarget{})
	err := b.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), a.Addr()) {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

func TestShutdownRespectsDeadline(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	target := &fakeTarget{outcome: Revoked, hold: func() {
		close(entered)
		<-release
	}}
	s := newServer(t, DefaultConfig(), target)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := send(c, s.Addr(), "k", reqBody("k", ScopeSession, "s"))
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Shutdown(ctx)
	close(release)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with a done context: %v, want context.Canceled", err)
	}
	<-done // the in-flight request was cut off (or completed); either way it ends
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestLatency(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Latency, cfg.LatencyJitter = 30*time.Millisecond, 10*time.Millisecond
	s := newServer(t, cfg, &fakeTarget{outcome: Revoked})
	begin := time.Now()
	w := post(s.Handler(), "k", reqBody("k", ScopeSession, "s"))
	if el := time.Since(begin); el < cfg.Latency {
		t.Errorf("answered after %s, want at least %s", el, cfg.Latency)
	}
	if w.Code != http.StatusCreated {
		t.Errorf("status %d", w.Code)
	}
}

func TestShutdownAbortsLatency(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Latency = time.Hour
	target := &fakeTarget{outcome: Revoked}
	s := newServer(t, cfg, target)
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- post(s.Handler(), "k", reqBody("k", ScopeSession, "s")) }()
	waitFor(t, func() bool { return s.Stats().Received == 1 })
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := <-done
	if w.Code != http.StatusServiceUnavailable || target.count() != 0 {
		t.Errorf("status %d, %d Revoke calls; want 503 and none", w.Code, target.count())
	}
}

func TestNew(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ErrorRate = 2
	cfg.BearerToken = "secret token"
	_, err := New(cfg, &fakeTarget{})
	if err == nil || !strings.Contains(err.Error(), "error_rate") || strings.Contains(err.Error(), "secret") {
		t.Errorf("New with a bad config: %v", err)
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Error("New with a nil Target succeeded")
	}
}

func TestSetFailuresClamps(t *testing.T) {
	s := newServer(t, DefaultConfig(), &fakeTarget{outcome: Revoked})
	s.SetFailures(5, -1)
	if w := post(s.Handler(), "k", reqBody("k", ScopeSession, "s")); w.Code != http.StatusServiceUnavailable {
		t.Errorf("error rate 5 (clamped to 1): status %d", w.Code)
	}
	s.SetFailures(-3, 0)
	if w := post(s.Handler(), "k", reqBody("k", ScopeSession, "s")); w.Code != http.StatusCreated {
		t.Errorf("error rate -3 (clamped to 0): status %d", w.Code)
	}
}

// TestInjectedTimeoutAppliesThenHolds: a timed-out request is applied (the
// key is consumed, the Target called once) and its answer held until the
// client gives up; the retry with the same key is answered from the store.
func TestInjectedTimeoutAppliesThenHolds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TimeoutRate, cfg.TimeoutDelay = 1, time.Hour
	target := &fakeTarget{outcome: Revoked, enforced: true}
	s := start(t, cfg, target)
	client := &http.Client{Timeout: 200 * time.Millisecond}
	if _, _, err := send(client, s.Addr(), "k", reqBody("k", ScopeSession, "s")); err == nil {
		t.Fatal("a held answer reached the client")
	}
	waitFor(t, func() bool { return s.Stats().TimedOut == 1 })
	if target.count() != 1 || s.Stats().Revoked != 1 {
		t.Fatalf("Target called %d times, %d revoked; want the timed-out request applied once", target.count(), s.Stats().Revoked)
	}
	s.SetFaults(0, 0, 0)
	resp, _, err := send(client, s.Addr(), "k", reqBody("k", ScopeSession, "s"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || resp.Header.Get(HeaderIdempotentReplay) != "true" || target.count() != 1 {
		t.Errorf("retry: status %d, replayed %q, %d Target calls; want the stored 201, replayed, still 1 call",
			resp.StatusCode, resp.Header.Get(HeaderIdempotentReplay), target.count())
	}
}
