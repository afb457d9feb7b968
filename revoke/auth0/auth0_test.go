package auth0

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/revoke/internal/adaptertest"
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
	*adaptertest.Fake
	audience      string
	sessions      map[string]bool
	refreshTokens map[string]bool
	users         map[string]bool
}

// newFake starts a fake holding the subjects of the scope table, granting
// tokens for the audience {url}/api/v2/.
func newFake(t *testing.T) (*fakeAuth0, revoke.AdapterConfig) {
	f := &fakeAuth0{sessions: map[string]bool{"s1": true, "a/b c": true}, refreshTokens: map[string]bool{"rt1": true}, users: map[string]bool{"auth0|u1": true}}
	f.Fake = &adaptertest.Fake{
		IsToken:      func(p string) bool { return p == "/oauth/token" },
		Grant:        f.grant,
		TokenPrefix:  "mgmt-",
		Scope:        "delete:sessions delete:refresh_tokens",
		ExpiresIn:    86400,
		Valid:        map[string]bool{staticToken: true},
		Unauthorized: map[string]any{"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"},
		API:          f.serve,
	}
	srv := f.Start(t)
	f.audience = srv.URL + "/api/v2/"
	return f, revoke.AdapterConfig{Kind: revoke.AdapterAuth0, URL: srv.URL + "/", AllowHTTP: true, ClientID: clientID,
		ClientSecretFile: adaptertest.WriteFile(t, secret+"\n"), Timeout: 5 * time.Second}
}

// start starts a fake and an adapter for it, configured as newFake says
// and edited by edit (when not nil), on a fake clock.
func start(t *testing.T, edit func(*revoke.AdapterConfig)) (*adaptertest.Fake, revoke.Adapter, *adaptertest.Clock) {
	f, cfg := newFake(t)
	if edit != nil {
		edit(&cfg)
	}
	a := adaptertest.Build(t, cfg, New)
	c := adaptertest.NewClock()
	a.now = c.Now
	return f.Fake, a, c
}

// grant judges a token request as Auth0 does.
func (f *fakeAuth0) grant(r *http.Request, body string) (int, any) {
	var req map[string]any
	json.Unmarshal([]byte(body), &req)
	switch {
	case r.Method != http.MethodPost || req["grant_type"] != "client_credentials":
		return http.StatusBadRequest, map[string]any{"error": "invalid_request"}
	case req["client_id"] != clientID || req["client_secret"] != secret:
		// Auth0 does not echo the request; this fake does, to prove the adapter redacts it.
		return http.StatusUnauthorized, map[string]any{"error": "access_denied", "error_description": "Unauthorized", "got": body}
	case req["audience"] != f.audience:
		return http.StatusForbidden, map[string]any{"error": "access_denied", "error_description": fmt.Sprintf("Service not enabled within domain: %v", req["audience"])}
	}
	return 0, nil
}

// serve answers an authorized Management API call.
func (f *fakeAuth0) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	notFound := func(what string) {
		adaptertest.JSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "The " + what + " does not exist."})
	}
	gone := func(set map[string]bool, id, what string) {
		if !set[id] {
			notFound(what)
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
		if !f.users[id[:strings.LastIndexByte(id, '/')]] {
			notFound("user")
			return
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		adaptertest.JSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found"})
	}
}

// vendor describes the adapter, with client credentials, to the shared tests.
var vendor = adaptertest.Vendor{
	Start:   start,
	Leaks:   []string{secret, url.QueryEscape(secret), "PLANTED", "mgmt-"},
	Revoked: http.StatusAccepted,
	Subject: revoke.Intent{ID: "u", Scope: revoke.ScopeUser, UserID: "auth0|u1"},
	Calls:   2,
	Secret:  secret,
	Refusal: ": access_denied: Unauthorized",
}

func TestScopes(t *testing.T) {
	vendor.Scopes(t, []adaptertest.ScopeCase{
		{Name: "session", In: revoke.Intent{ID: "i1", Scope: revoke.ScopeSession, SessionID: "s1", FamilyID: "rt1", UserID: "auth0|u1"},
			Calls: []string{"POST /api/v2/sessions/s1/revoke"}, Repeat: http.StatusNotFound},
		{Name: "family with session id revokes the session", In: revoke.Intent{ID: "i2", Scope: revoke.ScopeFamily, SessionID: "s1", FamilyID: "rt1"},
			Calls: []string{"POST /api/v2/sessions/s1/revoke"}, Repeat: http.StatusNotFound},
		{Name: "family without session id deletes the refresh token", In: revoke.Intent{ID: "i3", Scope: revoke.ScopeFamily, FamilyID: "rt1", UserID: "auth0|u1"},
			Calls: []string{"DELETE /api/v2/refresh-tokens/rt1"}, Repeat: http.StatusNotFound},
		{Name: "user deletes sessions then refresh tokens", In: revoke.Intent{ID: "i4", Scope: revoke.ScopeUser, UserID: "auth0|u1", SessionID: "s1"},
			Calls: []string{"DELETE /api/v2/users/auth0%7Cu1/sessions", "DELETE /api/v2/users/auth0%7Cu1/refresh-tokens"}, Repeat: http.StatusAccepted},
		{Name: "ids are path-escaped", In: revoke.Intent{ID: "i5", Scope: revoke.ScopeSession, SessionID: "a/b c"},
			Calls: []string{"POST /api/v2/sessions/a%2Fb%20c/revoke"}, Repeat: http.StatusNotFound},
	})
}

func TestUnknownUserIsDone(t *testing.T) {
	f, a, _ := start(t, nil)
	r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeUser, UserID: "ghost"})
	if r.Outcome != revoke.Done || r.Status != 404 || !strings.Contains(r.Note, "sessions") || !strings.Contains(r.Note, "refresh-tokens") {
		t.Fatalf("result = %+v, want done (404) with a note for both calls", r)
	}
	if _, api := f.Counts(); api != 2 {
		t.Fatalf("calls = %q, want both", f.Calls)
	}
}

func TestUserScopeNeedsBothCalls(t *testing.T) {
	tests := []struct {
		name      string
		force     []adaptertest.Answer
		want      revoke.Outcome
		status    int
		wantCalls int
	}{
		{"first fails: retry, second not sent", []adaptertest.Answer{{Status: 500}}, revoke.Retry, 500, 1},
		{"first refused: permanent, second not sent", []adaptertest.Answer{{Status: 403}}, revoke.Permanent, 403, 1},
		{"second rate-limited: retry", []adaptertest.Answer{{Status: 202}, {Status: 429, Header: http.Header{"Retry-After": {"4"}}}}, revoke.Retry, 429, 2},
		{"second fails: retry", []adaptertest.Answer{{Status: 204}, {Status: 503}}, revoke.Retry, 503, 2},
		{"both done", []adaptertest.Answer{{Status: 204}, {Status: 202}}, revoke.Done, 202, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, a, _ := start(t, nil)
			f.APIForce = tc.force
			r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeUser, UserID: "auth0|u1"})
			if r.Outcome != tc.want || r.Status != tc.status {
				t.Fatalf("result = %+v, want %v with %d", r, tc.want, tc.status)
			}
			if _, api := f.Counts(); api != tc.wantCalls {
				t.Fatalf("calls = %q, want %d", f.Calls, tc.wantCalls)
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
			f, cfg := newFake(t)
			cfg.Audience = tc.audience
			want := f.audience
			if tc.audience != "" {
				f.audience, want = tc.audience, tc.audience
			}
			a := adaptertest.Build(t, cfg, New)
			if r := a.Revoke(context.Background(), adaptertest.SessionIntent()); r.Outcome != revoke.Done {
				t.Fatalf("result = %+v", r)
			}
			if len(f.TokenCalls) != 1 || f.TokenCalls[0] != "POST /oauth/token" || f.TokenTypes[0] != "application/json" {
				t.Fatalf("token calls = %q, content types %q", f.TokenCalls, f.TokenTypes)
			}
			var body map[string]any
			json.Unmarshal([]byte(f.TokenBodies[0]), &body)
			wantBody := map[string]any{"grant_type": "client_credentials", "client_id": clientID, "client_secret": secret, "audience": want}
			if fmt.Sprint(body) != fmt.Sprint(wantBody) {
				t.Fatalf("token body = %v, want %v", body, wantBody)
			}
		})
	}
}

func TestStaticToken(t *testing.T) {
	f, a, _ := start(t, func(c *revoke.AdapterConfig) {
		c.ClientID, c.ClientSecretFile, c.TokenFile = "", "", adaptertest.WriteFile(t, staticToken+"\n")
	})
	if r := a.Revoke(context.Background(), adaptertest.SessionIntent()); r.Outcome != revoke.Done {
		t.Fatalf("result = %+v", r)
	}
	if f.Auths[0] != "Bearer "+staticToken {
		t.Fatalf("Authorization = %q", f.Auths[0])
	}
	// The static token expired: permanent, naming the key, and no renewal.
	f.Locked(func() {
		f.Valid = map[string]bool{}
		f.APIForce = []adaptertest.Answer{{Status: 401, Body: `{"message":"Expired token $AUTH"}`}}
	})
	r := a.Revoke(context.Background(), adaptertest.SessionIntent())
	if r.Outcome != revoke.Permanent || r.Status != 401 || !strings.Contains(r.Err.Error(), "revoke.adapter.token_file") {
		t.Fatalf("result = %+v, want permanent 401 naming revoke.adapter.token_file", r)
	}
	adaptertest.NoLeak(t, r.Err, vendor.Leaks...)
	if tokens, api := f.Counts(); tokens != 0 || api != 2 {
		t.Fatalf("token requests = %d, calls = %d; want 0 and 2", tokens, api)
	}
}

func TestTokenCached(t *testing.T) { vendor.TokenCached(t) }

func TestTokenFetchedOnceUnderConcurrency(t *testing.T) { vendor.TokenFetchedOnceUnderConcurrency(t) }

func TestTokenRenewedBeforeExpiry(t *testing.T) { vendor.TokenRenewedBeforeExpiry(t) }

func TestTokenRenewedOnceOn401(t *testing.T) { vendor.TokenRenewedOnceOn401(t) }

func TestRateLimitHeaders(t *testing.T) {
	reset := func(d time.Duration) string { return strconv.FormatInt(adaptertest.Epoch.Add(d).Unix(), 10) }
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
			f, a, _ := start(t, nil)
			a429 := adaptertest.Answer{Status: 429, Header: tc.header, Body: `{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached"}`}
			if tc.token {
				f.TokenForce = []adaptertest.Answer{a429}
			} else {
				f.APIForce = []adaptertest.Answer{a429}
			}
			r := a.Revoke(context.Background(), adaptertest.SessionIntent())
			if r.Outcome != revoke.Retry || r.Status != 429 || r.RetryAfter != tc.want {
				t.Fatalf("result = %+v, want retry 429 with RetryAfter %v", r, tc.want)
			}
		})
	}
}

func TestStatusClassification(t *testing.T) {
	vendor.Statuses(t, adaptertest.StatusCases(
		adaptertest.StatusCase{Name: "403", Status: http.StatusForbidden, Want: revoke.Permanent, ErrHas: "delete:sessions"},
	))
}

func TestTokenEndpointFailures(t *testing.T) {
	vendor.TokenEndpointFailures(t,
		adaptertest.TokenFailure{Name: "audience not granted", Edit: func(c *revoke.AdapterConfig) { c.Audience = "https://elsewhere/api/v2/" }, Want: revoke.Permanent,
			ErrHas: []string{"revoke.adapter.audience", "HTTP 403"}},
		// The 200-character excerpt ends inside the echoed secret.
		adaptertest.TokenFailure{Name: "long echo cut inside the secret", Force: &adaptertest.Answer{Status: 502, Body: strings.Repeat("x", 110) + "$BODY"},
			Want: revoke.Retry, ErrHas: []string{"HTTP 502", "[redacted]"}},
	)
}

func TestUnreachableIsRetry(t *testing.T) { vendor.Unreachable(t) }

func TestBadIntents(t *testing.T) { vendor.BadIntents(t) }

func TestNew(t *testing.T) {
	good := revoke.AdapterConfig{URL: "https://tenant.auth0.com/", ClientID: clientID, ClientSecretFile: adaptertest.WriteFile(t, secret), Timeout: time.Second}
	adaptertest.RefusesConfigs(t, good, []adaptertest.ConfigCase{
		{Name: "no url", Edit: func(c *revoke.AdapterConfig) { c.URL = "" }, Err: "revoke.adapter.url"},
		{Name: "no client id", Edit: func(c *revoke.AdapterConfig) { c.ClientID = "" }, Err: "revoke.adapter.client_id"},
		{Name: "no secret file", Edit: func(c *revoke.AdapterConfig) { c.ClientSecretFile = "" }, Err: "revoke.adapter.client_id"},
		{Name: "missing secret file", Edit: func(c *revoke.AdapterConfig) { c.ClientSecretFile = adaptertest.Missing(t) }, Err: "revoke.adapter.client_secret_file"},
		{Name: "empty secret file", Edit: func(c *revoke.AdapterConfig) { c.ClientSecretFile = adaptertest.WriteFile(t, "\n") }, Err: "revoke.adapter.client_secret_file"},
		{Name: "empty token file", Edit: func(c *revoke.AdapterConfig) { c.TokenFile = adaptertest.WriteFile(t, "\n") }, Err: "revoke.adapter.token_file"},
	}, New, "PLANTED")
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
