package auth0

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

const (
	clientID = "m2m-vigil"
	// secret is planted in the client secret file, staticToken in the token
	// file; no error may ever contain either.
	secret      = "a0-PLANTED-secret+/=\"<7>"
	staticToken = "eyJ.PLANTEDstatic.sig"
)

// fakeAuth0 follows the documented Auth0 endpoints: the client-credentials
// grant at POST /oauth/token (JSON; 401 access_denied on bad credentials,
// 403 for an audience the client is not granted), POST
// /api/v2/sessions/{id}/revoke (202; 404 when gone), DELETE
// /api/v2/refresh-tokens/{id} (202; 404 when gone), DELETE
// /api/v2/users/{id}/sessions and /refresh-tokens (202; 404 when no such
// user). Management calls need a bearer token it issued (or the static one).
type fakeAuth0 struct {
	mu            sync.Mutex
	audience      string
	expiresIn     int64
	issued        int
	valid         map[string]bool
	sessions      map[string]bool
	refreshTokens map[string]bool
	users         map[string]bool
	tokenForce    []forced
	apiForce      []forced
	reject        bool
	tokenBodies   []map[string]any
	tokenCT       []string
	tokenCalls    []string
	calls         []string // management calls: "METHOD escaped-path"
	auths         []string
}

type forced struct {
	status int
	header http.Header
	body   string // $BODY and $AUTH are replaced by the request's body and Authorization
}

func newFake(t *testing.T) (*fakeAuth0, *httptest.Server) {
	f := &fakeAuth0{expiresIn: 86400, valid: map[string]bool{staticToken: true}, sessions: map[string]bool{},
		refreshTokens: map[string]bool{}, users: map[string]bool{}}
	srv := httptest.NewServer(f)
	f.audience = srv.URL + "/api/v2/"
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAuth0) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw := make([]byte, 4096)
	n, _ := r.Body.Read(raw)
	body := string(raw[:n])
	answer := func(a forced) {
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.status)
		s := strings.ReplaceAll(a.body, "$BODY", body)
		w.Write([]byte(strings.ReplaceAll(s, "$AUTH", r.Header.Get("Authorization"))))
	}
	p := r.URL.Path
	if p == "/oauth/token" {
		f.tokenCalls = append(f.tokenCalls, r.Method+" "+p)
		f.tokenCT = append(f.tokenCT, r.Header.Get("Content-Type"))
		var req map[string]any
		json.Unmarshal([]byte(body), &req)
		f.tokenBodies = append(f.tokenBodies, req)
		if len(f.tokenForce) > 0 {
			a := f.tokenForce[0]
			f.tokenForce = f.tokenForce[1:]
			answer(a)
			return
		}
		if r.Method != http.MethodPost || req["grant_type"] != "client_credentials" {
			jsonAnswer(w, 400, map[string]any{"error": "invalid_request"})
			return
		}
		if req["client_id"] != clientID || req["client_secret"] != secret {
			// Auth0 does not echo the request; this fake does, to prove the adapter redacts it.
			jsonAnswer(w, 401, map[string]any{"error": "access_denied", "error_description": "Unauthorized", "got": body})
			return
		}
		if req["audience"] != f.audience {
			jsonAnswer(w, 403, map[string]any{"error": "access_denied", "error_description": fmt.Sprintf("Service not enabled within domain: %v", req["audience"])})
			return
		}
		f.issued++
		tok := fmt.Sprintf("mgmt-%d", f.issued)
		f.valid[tok] = true
		jsonAnswer(w, 200, map[string]any{"access_token": tok, "expires_in": f.expiresIn, "token_type": "Bearer", "scope": "delete:sessions delete:refresh_tokens"})
		return
	}
	f.calls = append(f.calls, r.Method+" "+r.URL.EscapedPath())
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	if len(f.apiForce) > 0 {
		a := f.apiForce[0]
		f.apiForce = f.apiForce[1:]
		answer(a)
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if f.reject || !f.valid[tok] {
		jsonAnswer(w, 401, map[string]any{"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"})
		return
	}
	gone := func(set map[string]bool, id, what string) {
		if !set[id] {
			jsonAnswer(w, 404, map[string]any{"statusCode": 404, "error": "Not Found", "message": "The " + what + " does not exist."})
			return
		}
		set[id] = false
		w.WriteHeader(http.StatusAccepted)
	}
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/api/v2/sessions/") && strings.HasSuffix(p, "/revoke"):
		gone(f.sessions, strings.TrimSuffix(strings.TrimPrefix(p, "/api/v2/sessions/"), "/revoke"), "session")
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/api/v2/refresh-tokens/"):
		gone(f.refreshTokens, strings.TrimPrefix(p, "/api/v2/refresh-tokens/"), "refresh token")
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/api/v2/users/") &&
		(strings.HasSuffix(p, "/sessions") || strings.HasSuffix(p, "/refresh-tokens")):
		id := strings.TrimPrefix(p, "/api/v2/users/")
		id = id[:strings.LastIndexByte(id, '/')]
		if !f.users[id] {
			jsonAnswer(w, 404, map[string]any{"statusCode": 404, "error": "Not Found", "message": "The user does not exist."})
			return
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		jsonAnswer(w, 404, map[string]any{"statusCode": 404, "error": "Not Found"})
	}
}

func jsonAnswer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeAuth0) counts() (tokens, api int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tokenCalls), len(f.calls)
}

// clock is a fake time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func config(t *testing.T, srv *httptest.Server) revoke.AdapterConfig {
	return revoke.AdapterConfig{Kind: revoke.AdapterAuth0, URL: srv.URL + "/", AllowHTTP: true, ClientID: clientID,
		ClientSecretFile: writeFile(t, secret+"\n"), Timeout: 5 * time.Second}
}

func newAdapter(t *testing.T, srv *httptest.Server) (*Adapter, *clock) {
	return newAdapterWith(t, config(t, srv))
}

func newAdapterWith(t *testing.T, cfg revoke.AdapterConfig) (*Adapter, *clock) {
	client, err := revoke.NewHTTPClient(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a.now = c.Now
	return a, c
}

func checkNoSecret(t *testing.T, r revoke.Result) {
	t.Helper()
	if r.Err == nil {
		return
	}
	for _, s := range []string{secret, url.QueryEscape(secret), "PLANTED", "mgmt-"} {
		if strings.Contains(r.Err.Error(), s) {
			t.Fatalf("error leaks a credential (%q): %v", s, r.Err)
		}
	}
}

var sessionIntent = revoke.Intent{ID: "i", Scope: revoke.ScopeSession, SessionID: "s1"}

func TestScopes(t *testing.T) {
	tests := []struct {
		name       string
		in         revoke.Intent
		wantCalls  []string
		wantRepeat int // status of the same revocation again
	}{
		{"session", revoke.Intent{ID: "i1", Scope: revoke.ScopeSession, SessionID: "s1", FamilyID: "rt1", UserID: "auth0|u1"},
			[]string{"POST /api/v2/sessions/s1/revoke"}, 404},
		{"family with session id revokes the session", revoke.Intent{ID: "i2", Scope: revoke.ScopeFamily, SessionID: "s1", FamilyID: "rt1"},
			[]string{"POST /api/v2/sessions/s1/revoke"}, 404},
		{"family without session id deletes the refresh token", revoke.Intent{ID: "i3", Scope: revoke.ScopeFamily, FamilyID: "rt1", UserID: "auth0|u1"},
			[]string{"DELETE /api/v2/refresh-tokens/rt1"}, 404},
		{"user deletes sessions then refresh tokens", revoke.Intent{ID: "i4", Scope: revoke.ScopeUser, UserID: "auth0|u1", SessionID: "s1"},
			[]string{"DELETE /api/v2/users/auth0%7Cu1/sessions", "DELETE /api/v2/users/auth0%7Cu1/refresh-tokens"}, 202},
		{"ids are path-escaped", revoke.Intent{ID: "i5", Scope: revoke.ScopeSession, SessionID: "a/b c"},
			[]string{"POST /api/v2/sessions/a%2Fb%20c/revoke"}, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.sessions["s1"], f.sessions["a/b c"], f.refreshTokens["rt1"], f.users["auth0|u1"] = true, true, true, true
			a, _ := newAdapter(t, srv)
			r := a.Revoke(context.Background(), &tc.in)
			if r.Outcome != revoke.Done || r.Status != http.StatusAccepted || r.Err != nil || r.Note != "" {
				t.Fatalf("first revocation = %+v, want done with 202", r)
			}
			r = a.Revoke(context.Background(), &tc.in)
			if r.Outcome != revoke.Done || r.Status != tc.wantRepeat || r.Err != nil {
				t.Fatalf("repeated revocation = %+v, want done with %d", r, tc.wantRepeat)
			}
			want := append(append([]string(nil), tc.wantCalls...), tc.wantCalls...)
			if fmt.Sprint(f.calls) != fmt.Sprint(want) {
				t.Fatalf("calls = %q, want %q", f.calls, want)
			}
			for _, got := range f.auths {
				if got != "Bearer mgmt-1" {
					t.Fatalf("Authorization = %q, want Bearer mgmt-1", got)
				}
			}
		})
	}
}

func TestUnknownUserIsDone(t *testing.T) {
	f, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeUser, UserID: "ghost"})
	if r.Outcome != revoke.Done || r.Status != 404 || !strings.Contains(r.Note, "sessions") || !strings.Contains(r.Note, "refresh-tokens") {
		t.Fatalf("result = %+v, want done (404) with a note for both calls", r)
	}
	if _, api := f.counts(); api != 2 {
		t.Fatalf("calls = %q, want both", f.calls)
	}
}

func TestUserScopeNeedsBothCalls(t *testing.T) {
	tests := []struct {
		name      string
		force     []forced
		want      revoke.Outcome
		status    int
		wantCalls int
	}{
		{"first fails: retry, second not sent", []forced{{status: 500}}, revoke.Retry, 500, 1},
		{"first refused: permanent, second not sent", []forced{{status: 403}}, revoke.Permanent, 403, 1},
		{"second rate-limited: retry", []forced{{status: 202}, {status: 429, header: http.Header{"Retry-After": {"4"}}}}, revoke.Retry, 429, 2},
		{"second fails: retry", []forced{{status: 204}, {status: 503}}, revoke.Retry, 503, 2},
		{"both done", []forced{{status: 204}, {status: 202}}, revoke.Done, 202, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.apiForce = tc.force
			a, _ := newAdapter(t, srv)
			r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeUser, UserID: "auth0|u1"})
			if r.Outcome != tc.want || r.Status != tc.status {
				t.Fatalf("result = %+v, want %v with %d", r, tc.want, tc.status)
			}
			if _, api := f.counts(); api != tc.wantCalls {
				t.Fatalf("calls = %q, want %d", f.calls, tc.wantCalls)
			}
		})
	}
}

func TestTokenRequest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		audience string // config; "" = default
	}{
		{"default audience", ""},
		{"configured audience", "https://tenant.eu.auth0.com/api/v2/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.sessions["s1"] = true
			cfg := config(t, srv)
			cfg.Audience = tc.audience
			want := srv.URL + "/api/v2/"
			if tc.audience != "" {
				f.audience, want = tc.audience, tc.audience
			}
			a, _ := newAdapterWith(t, cfg)
			if r := a.Revoke(context.Background(), &sessionIntent); r.Outcome != revoke.Done {
				t.Fatalf("result = %+v", r)
			}
			if len(f.tokenCalls) != 1 || f.tokenCalls[0] != "POST /oauth/token" || f.tokenCT[0] != "application/json" {
				t.Fatalf("token calls = %q, content types %q", f.tokenCalls, f.tokenCT)
			}
			wantBody := map[string]any{"grant_type": "client_credentials", "client_id": clientID, "client_secret": secret, "audience": want}
			if fmt.Sprint(f.tokenBodies[0]) != fmt.Sprint(wantBody) {
				t.Fatalf("token body = %v, want %v", f.tokenBodies[0], wantBody)
			}
		})
	}
}

func TestStaticToken(t *testing.T) {
	f, srv := newFake(t)
	f.sessions["s1"] = true
	cfg := config(t, srv)
	cfg.ClientID, cfg.ClientSecretFile, cfg.TokenFile = "", "", writeFile(t, staticToken+"\n")
	a, _ := newAdapterWith(t, cfg)
	if r := a.Revoke(context.Background(), &sessionIntent); r.Outcome != revoke.Done {
		t.Fatalf("result = %+v", r)
	}
	if f.auths[0] != "Bearer "+staticToken {
		t.Fatalf("Authorization = %q", f.auths[0])
	}
	// The static token expired: permanent, naming the key, and no renewal.
	f.mu.Lock()
	f.valid = map[string]bool{}
	f.apiForce = []forced{{status: 401, body: `{"message":"Expired token $AUTH"}`}}
	f.mu.Unlock()
	r := a.Revoke(context.Background(), &sessionIntent)
	if r.Outcome != revoke.Permanent || r.Status != 401 || !strings.Contains(r.Err.Error(), "revoke.adapter.token_file") {
		t.Fatalf("result = %+v, want permanent 401 naming revoke.adapter.token_file", r)
	}
	checkNoSecret(t, r)
	if tokens, api := f.counts(); tokens != 0 || api != 2 {
		t.Fatalf("token requests = %d, calls = %d; want 0 and 2", tokens, api)
	}
}

func TestTokenCached(t *testing.T) {
	f, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	for i := range 5 {
		in := revoke.Intent{ID: fmt.Sprint(i), Scope: revoke.ScopeFamily, FamilyID: fmt.Sprint("rt", i)}
		if r := a.Revoke(context.Background(), &in); r.Outcome != revoke.Done {
			t.Fatalf("result = %+v", r)
		}
	}
	if tokens, api := f.counts(); tokens != 1 || api != 5 {
		t.Fatalf("token requests = %d, calls = %d; want 1 and 5", tokens, api)
	}
}

func TestTokenFetchedOnceUnderConcurrency(t *testing.T) {
	f, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			in := revoke.Intent{ID: fmt.Sprint(i), Scope: revoke.ScopeUser, UserID: fmt.Sprint("auth0|", i)}
			if r := a.Revoke(context.Background(), &in); r.Outcome != revoke.Done {
				t.Errorf("result = %+v", r)
			}
		})
	}
	wg.Wait()
	if tokens, api := f.counts(); tokens != 1 || api != 64 {
		t.Fatalf("token requests = %d, calls = %d; want 1 and 64", tokens, api)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int64
		stillGood time.Duration
		renewed   time.Duration
	}{
		{"24 h token, 30 s margin", 86400, 86369 * time.Second, 86370 * time.Second},
		{"short token, half-life", 40, 19 * time.Second, 20 * time.Second},
		{"no expires_in, one minute", 0, 59 * time.Second, 60 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.expiresIn = tc.expiresIn
			a, clk := newAdapter(t, srv)
			revokeOK := func() {
				t.Helper()
				if r := a.Revoke(context.Background(), &sessionIntent); r.Outcome != revoke.Done {
					t.Fatalf("result = %+v", r)
				}
			}
			revokeOK()
			clk.Advance(tc.stillGood)
			revokeOK()
			if tokens, _ := f.counts(); tokens != 1 {
				t.Fatalf("token requests = %d before expiry, want 1", tokens)
			}
			clk.Advance(tc.renewed - tc.stillGood)
			revokeOK()
			if tokens, _ := f.counts(); tokens != 2 {
				t.Fatalf("token requests = %d after expiry, want 2", tokens)
			}
			if got := f.auths[len(f.auths)-1]; got != "Bearer mgmt-2" {
				t.Fatalf("Authorization after renewal = %q", got)
			}
		})
	}
}

func TestTokenRenewedOnceOn401(t *testing.T) {
	f, srv := newFake(t)
	f.users["auth0|u1"] = true
	a, _ := newAdapter(t, srv)
	if r := a.Revoke(context.Background(), &sessionIntent); r.Outcome != revoke.Done {
		t.Fatalf("result = %+v", r)
	}
	f.mu.Lock()
	f.valid = map[string]bool{} // the cached token was revoked (e.g. the client grant rotated)
	f.mu.Unlock()
	user := revoke.Intent{ID: "u", Scope: revoke.ScopeUser, UserID: "auth0|u1"}
	r := a.Revoke(context.Background(), &user)
	if r.Outcome != revoke.Done || r.Status != http.StatusAccepted {
		t.Fatalf("result = %+v, want done after renewal", r)
	}
	if tokens, api := f.counts(); tokens != 2 || api != 4 {
		t.Fatalf("token requests = %d, calls = %d; want 2 and 4", tokens, api)
	}
	if want := []string{"Bearer mgmt-1", "Bearer mgmt-1", "Bearer mgmt-2", "Bearer mgmt-2"}; fmt.Sprint(f.auths) != fmt.Sprint(want) {
		t.Fatalf("Authorization headers = %q, want %q", f.auths, want)
	}

	// Fresh tokens refused too: permanent after one renewal per attempt.
	f.mu.Lock()
	f.reject = true
	f.mu.Unlock()
	r = a.Revoke(context.Background(), &user)
	if r.Outcome != revoke.Permanent || r.Status != 401 {
		t.Fatalf("result = %+v, want permanent 401", r)
	}
	if tokens, api := f.counts(); tokens != 3 || api != 6 {
		t.Fatalf("token requests = %d, calls = %d; want 3 and 6", tokens, api)
	}
	checkNoSecret(t, r)
}

func TestRateLimitHeaders(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	reset := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	tests := []struct {
		name   string
		header http.Header
		token  bool // answer on the token endpoint rather than the Management API
		want   time.Duration
	}{
		{"Retry-After", http.Header{"Retry-After": {"9"}}, false, 9 * time.Second},
		{"X-RateLimit-Reset only", http.Header{"X-Ratelimit-Reset": {reset(12 * time.Second)}, "X-Ratelimit-Remaining": {"0"}}, false, 12 * time.Second},
		{"Retry-After wins", http.Header{"Retry-After": {"3"}, "X-Ratelimit-Reset": {reset(40 * time.Second)}}, false, 3 * time.Second},
		{"reset in the past", http.Header{"X-Ratelimit-Reset": {reset(-5 * time.Second)}}, false, 0},
		{"reset capped at an hour", http.Header{"X-Ratelimit-Reset": {reset(5 * time.Hour)}}, false, time.Hour},
		{"unreadable reset", http.Header{"X-Ratelimit-Reset": {"soon"}}, false, 0},
		{"none", nil, false, 0},
		{"token endpoint X-RateLimit-Reset", http.Header{"X-Ratelimit-Reset": {reset(7 * time.Second)}}, true, 7 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			a429 := forced{status: 429, header: tc.header, body: `{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached"}`}
			if tc.token {
				f.tokenForce = []forced{a429}
			} else {
				f.apiForce = []forced{a429}
			}
			a, _ := newAdapter(t, srv)
			r := a.Revoke(context.Background(), &sessionIntent)
			if r.Outcome != revoke.Retry || r.Status != 429 || r.RetryAfter != tc.want {
				t.Fatalf("result = %+v, want retry 429 with RetryAfter %v", r, tc.want)
			}
		})
	}
}

func TestStatusClassification(t *testing.T) {
	echo := `{"message":"echo $AUTH"}`
	tests := []struct {
		name       string
		status     int
		header     http.Header
		want       revoke.Outcome
		retryAfter time.Duration
		errHas     string
	}{
		{"202", 202, nil, revoke.Done, 0, ""},
		{"204", 204, nil, revoke.Done, 0, ""},
		{"404", 404, nil, revoke.Done, 0, ""},
		{"409", 409, nil, revoke.Done, 0, ""},
		{"429", 429, http.Header{"Retry-After": {"2"}}, revoke.Retry, 2 * time.Second, "HTTP 429"},
		{"408", 408, nil, revoke.Retry, 0, "HTTP 408"},
		{"500", 500, nil, revoke.Retry, 0, "HTTP 500"},
		{"503", 503, nil, revoke.Retry, 0, "HTTP 503"},
		{"400", 400, nil, revoke.Permanent, 0, "HTTP 400"},
		{"403", 403, nil, revoke.Permanent, 0, "delete:sessions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.apiForce = []forced{{status: tc.status, header: tc.header, body: echo}}
			a, _ := newAdapter(t, srv)
			r := a.Revoke(context.Background(), &sessionIntent)
			if r.Outcome != tc.want || r.Status != tc.status || r.RetryAfter != tc.retryAfter {
				t.Fatalf("result = %+v, want %v status %d retry-after %v", r, tc.want, tc.status, tc.retryAfter)
			}
			if tc.errHas != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tc.errHas)) {
				t.Fatalf("error %v does not mention %q", r.Err, tc.errHas)
			}
			if tc.want == revoke.Done && r.Err != nil {
				t.Fatalf("done with error %v", r.Err)
			}
			checkNoSecret(t, r)
			if tokens, api := f.counts(); tokens != 1 || api != 1 {
				t.Fatalf("token requests = %d, calls = %d; want one attempt", tokens, api)
			}
		})
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	echo := `{"error":"x","request":"$BODY"}`
	tests := []struct {
		name   string
		force  *forced
		secret string // the secret file's content, when not the right secret
		cfg    func(*revoke.AdapterConfig)
		want   revoke.Outcome
		errHas []string
	}{
		{name: "wrong secret", secret: "wrong-" + secret, want: revoke.Permanent, errHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file", "HTTP 401: access_denied: Unauthorized"}},
		{name: "wrong client id", cfg: func(c *revoke.AdapterConfig) { c.ClientID = "other" }, want: revoke.Permanent, errHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file"}},
		{name: "400", force: &forced{status: 400, body: echo}, want: revoke.Permanent, errHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file"}},
		{name: "audience not granted", cfg: func(c *revoke.AdapterConfig) { c.Audience = "https://elsewhere/api/v2/" }, want: revoke.Permanent, errHas: []string{"revoke.adapter.audience", "HTTP 403"}},
		{name: "404", force: &forced{status: 404, body: "not here"}, want: revoke.Permanent, errHas: []string{"revoke.adapter.url"}},
		{name: "200 without token", force: &forced{status: 200, body: `{}`}, want: revoke.Permanent, errHas: []string{"access_token"}},
		{name: "500", force: &forced{status: 500, body: echo}, want: revoke.Retry, errHas: []string{"HTTP 500"}},
		{name: "long echo cut inside the secret", force: &forced{status: 502, body: strings.Repeat("x", 110) + "$BODY"}, want: revoke.Retry, errHas: []string{"HTTP 502", "[redacted]"}}, // the 200-character excerpt ends inside the secret
		{name: "JSON echo of the request", force: &forced{status: 500, body: `{"got":$BODY}`}, want: revoke.Retry, errHas: []string{"HTTP 500", "[redacted]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			cfg := config(t, srv)
			if tc.secret != "" {
				cfg.ClientSecretFile = writeFile(t, tc.secret)
			}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if tc.force != nil {
				f.tokenForce = []forced{*tc.force}
			}
			a, _ := newAdapterWith(t, cfg)
			r := a.Revoke(context.Background(), &sessionIntent)
			if r.Outcome != tc.want || r.Err == nil {
				t.Fatalf("result = %+v, want %v with an error", r, tc.want)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(r.Err.Error(), s) {
					t.Errorf("error %q does not mention %q", r.Err, s)
				}
			}
			checkNoSecret(t, r)
			if _, api := f.counts(); api != 0 {
				t.Fatalf("Management API called without a token: %q", f.calls)
			}
		})
	}
}

func TestUnreachableIsRetry(t *testing.T) {
	_, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	srv.Close()
	r := a.Revoke(context.Background(), &sessionIntent)
	if r.Outcome != revoke.Retry || r.Err == nil || r.Status != 0 {
		t.Fatalf("result = %+v, want retry", r)
	}
	checkNoSecret(t, r)
}

func TestBadIntents(t *testing.T) {
	f, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	for _, in := range []revoke.Intent{
		{ID: "a", Scope: revoke.ScopeSession, FamilyID: "f", UserID: "u"},
		{ID: "b", Scope: revoke.ScopeFamily, UserID: "u"},
		{ID: "c", Scope: revoke.ScopeUser, SessionID: "s"},
		{ID: "d", Scope: "tenant", UserID: "u"},
	} {
		r := a.Revoke(context.Background(), &in)
		if r.Outcome != revoke.Permanent || r.Err == nil || !strings.Contains(r.Err.Error(), in.ID) {
			t.Errorf("intent %+v: result = %+v, want permanent naming the intent", in, r)
		}
	}
	if tokens, api := f.counts(); tokens+api != 0 {
		t.Fatal("bad intents made calls")
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	good := revoke.AdapterConfig{URL: "https://tenant.auth0.com/", ClientID: clientID, ClientSecretFile: writeFile(t, secret), Timeout: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*revoke.AdapterConfig)
		err  string
	}{
		{"no url", func(c *revoke.AdapterConfig) { c.URL = "" }, "revoke.adapter.url"},
		{"no client id", func(c *revoke.AdapterConfig) { c.ClientID = "" }, "revoke.adapter.client_id"},
		{"no secret file", func(c *revoke.AdapterConfig) { c.ClientSecretFile = "" }, "revoke.adapter.client_id"},
		{"missing secret file", func(c *revoke.AdapterConfig) { c.ClientSecretFile = filepath.Join(dir, "nope") }, "revoke.adapter.client_secret_file"},
		{"empty secret file", func(c *revoke.AdapterConfig) { c.ClientSecretFile = empty }, "revoke.adapter.client_secret_file"},
		{"empty token file", func(c *revoke.AdapterConfig) { c.TokenFile = empty }, "revoke.adapter.token_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New(cfg, http.DefaultClient)
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "PLANTED") {
				t.Fatalf("New = %v, want an error naming %s", err, tc.err)
			}
		})
	}
	a, err := New(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Endpoint(); got != "https://tenant.auth0.com" {
		t.Fatalf("Endpoint = %q", got)
	}
	if a.audience != "https://tenant.auth0.com/api/v2/" {
		t.Fatalf("default audience = %q", a.audience)
	}
	var _ revoke.Adapter = a
}
