package keycloak

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/revoke/internal/adaptertest"
)

const (
	realm    = "acme"
	clientID = "vigil-revoker"
	// secret is planted in the client secret file; no error may ever contain it.
	secret = "kc-PLANTED-secret+/=99"
)

// fakeKeycloak follows the documented Keycloak endpoints: the
// client-credentials grant at /realms/{realm}/protocol/openid-connect/token
// (form-encoded; 401 unauthorized_client on bad credentials, 404 on an
// unknown realm), DELETE /admin/realms/{realm}/sessions/{id} (204; 404 when
// gone) and POST /admin/realms/{realm}/users/{id}/logout (204; 404 when no
// such user). Admin calls need a bearer token it issued and has not revoked.
type fakeKeycloak struct {
	*adaptertest.Fake
	sessions map[string]bool
	users    map[string]bool
}

// start starts a fake holding the subjects of the scope table and an
// adapter for it, configured by config edited by edit (when not nil), on a
// fake clock.
func start(t *testing.T, edit func(*revoke.AdapterConfig)) (*adaptertest.Fake, revoke.Adapter, *adaptertest.Clock) {
	f := &fakeKeycloak{sessions: map[string]bool{"s1": true, "f1": true, "a/b c": true}, users: map[string]bool{"u1": true, "../x": true}}
	f.Fake = &adaptertest.Fake{
		IsToken:      func(p string) bool { return strings.HasPrefix(p, "/realms/") },
		Grant:        grant,
		TokenPrefix:  "access-",
		Scope:        "profile email",
		ExpiresIn:    300,
		Unauthorized: map[string]any{"error": "HTTP 401 Unauthorized"},
		API:          f.serve,
	}
	cfg := config(f.Start(t).URL, adaptertest.WriteFile(t, secret+"\n"))
	if edit != nil {
		edit(&cfg)
	}
	a, clk := newAdapter(t, cfg)
	return f.Fake, a, clk
}

// grant judges a token request as Keycloak does.
func grant(r *http.Request, body string) (int, any) {
	form, _ := url.ParseQuery(body)
	switch {
	case r.URL.Path != "/realms/"+realm+"/protocol/openid-connect/token":
		return http.StatusNotFound, map[string]any{"error": "Realm does not exist"}
	case r.Method != http.MethodPost || form.Get("grant_type") != "client_credentials":
		return http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"}
	case form.Get("client_id") != clientID || form.Get("client_secret") != secret:
		// Keycloak does not echo the secret; this fake does, to prove the adapter redacts it.
		return http.StatusUnauthorized, map[string]any{"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials", "got": body}
	}
	return 0, nil
}

// serve answers an authorized admin call.
func (f *fakeKeycloak) serve(w http.ResponseWriter, r *http.Request) {
	p, prefix := r.URL.Path, "/admin/realms/"+realm
	switch {
	case r.Method == http.MethodDelete && strings.HasPrefix(p, prefix+"/sessions/"):
		id := strings.TrimPrefix(p, prefix+"/sessions/")
		if !f.sessions[id] {
			adaptertest.JSON(w, http.StatusNotFound, map[string]any{"error": "Sesssion not found"})
			return
		}
		f.sessions[id] = false
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && strings.HasPrefix(p, prefix+"/users/") && strings.HasSuffix(p, "/logout"):
		if !f.users[strings.TrimSuffix(strings.TrimPrefix(p, prefix+"/users/"), "/logout")] {
			adaptertest.JSON(w, http.StatusNotFound, map[string]any{"error": "User not found"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		adaptertest.JSON(w, http.StatusNotFound, map[string]any{"error": "RESTEASY003210: Could not find resource"})
	}
}

func config(base, secretFile string) revoke.AdapterConfig {
	return revoke.AdapterConfig{Kind: revoke.AdapterKeycloak, URL: base + "/", AllowHTTP: true, Realm: realm,
		ClientID: clientID, ClientSecretFile: secretFile, Timeout: 5 * time.Second}
}

func newAdapter(t *testing.T, cfg revoke.AdapterConfig) (*Adapter, *adaptertest.Clock) {
	a := adaptertest.Build(t, cfg, New)
	c := adaptertest.NewClock()
	a.now = c.Now
	return a, c
}

// vendor describes the adapter to the shared tests.
var vendor = adaptertest.Vendor{
	Start:   start,
	Leaks:   []string{secret, url.QueryEscape(secret), "PLANTED", "access-"},
	Revoked: http.StatusNoContent,
	Subject: revoke.Intent{ID: "i", Scope: revoke.ScopeSession, SessionID: "s1"},
	Calls:   1,
	Secret:  secret,
	Refusal: ": unauthorized_client: Invalid client or Invalid client credentials",
}

func TestScopes(t *testing.T) {
	vendor.Scopes(t, []adaptertest.ScopeCase{
		{Name: "session", In: revoke.Intent{ID: "i1", Scope: revoke.ScopeSession, SessionID: "s1", FamilyID: "f1", UserID: "u1"},
			Calls: []string{"DELETE /admin/realms/acme/sessions/s1"}, Repeat: http.StatusNotFound},
		{Name: "family uses session id", In: revoke.Intent{ID: "i2", Scope: revoke.ScopeFamily, SessionID: "s1", FamilyID: "f1"},
			Calls: []string{"DELETE /admin/realms/acme/sessions/s1"}, Repeat: http.StatusNotFound},
		{Name: "family falls back to family id", In: revoke.Intent{ID: "i3", Scope: revoke.ScopeFamily, FamilyID: "f1"},
			Calls: []string{"DELETE /admin/realms/acme/sessions/f1"}, Repeat: http.StatusNotFound},
		{Name: "user", In: revoke.Intent{ID: "i4", Scope: revoke.ScopeUser, UserID: "u1", SessionID: "s1"},
			Calls: []string{"POST /admin/realms/acme/users/u1/logout"}, Repeat: http.StatusNoContent},
		{Name: "ids are path-escaped", In: revoke.Intent{ID: "i5", Scope: revoke.ScopeSession, SessionID: "a/b c"},
			Calls: []string{"DELETE /admin/realms/acme/sessions/a%2Fb%20c"}, Repeat: http.StatusNotFound},
		{Name: "user ids are path-escaped", In: revoke.Intent{ID: "i6", Scope: revoke.ScopeUser, UserID: "../x"},
			Calls: []string{"POST /admin/realms/acme/users/..%2Fx/logout"}, Repeat: http.StatusNoContent},
	})
}

func TestUnknownUserIsDone(t *testing.T) {
	_, a, _ := start(t, nil)
	r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeUser, UserID: "ghost"})
	if r.Outcome != revoke.Done || r.Status != http.StatusNotFound {
		t.Fatalf("result = %+v, want done (404)", r)
	}
}

func TestTokenRequest(t *testing.T) {
	f, a, _ := start(t, nil)
	if r := a.Revoke(context.Background(), adaptertest.SessionIntent()); r.Outcome != revoke.Done {
		t.Fatalf("result = %+v", r)
	}
	if len(f.TokenCalls) != 1 || f.TokenCalls[0] != "POST /realms/acme/protocol/openid-connect/token" {
		t.Fatalf("token calls = %q", f.TokenCalls)
	}
	if f.TokenTypes[0] != "application/x-www-form-urlencoded" {
		t.Fatalf("token Content-Type = %q", f.TokenTypes[0])
	}
	want := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	if got, _ := url.ParseQuery(f.TokenBodies[0]); got.Encode() != want.Encode() {
		t.Fatalf("token form = %v, want %v", got, want)
	}
}

func TestTokenCached(t *testing.T) { vendor.TokenCached(t) }

func TestTokenFetchedOnceUnderConcurrency(t *testing.T) { vendor.TokenFetchedOnceUnderConcurrency(t) }

func TestTokenRenewedBeforeExpiry(t *testing.T) { vendor.TokenRenewedBeforeExpiry(t) }

func TestTokenRenewedOnceOn401(t *testing.T) { vendor.TokenRenewedOnceOn401(t) }

func TestTokenEndpointFailures(t *testing.T) {
	vendor.TokenEndpointFailures(t,
		adaptertest.TokenFailure{Name: "unknown realm", Edit: func(c *revoke.AdapterConfig) { c.Realm = "nope" }, Want: revoke.Permanent,
			ErrHas: []string{"revoke.adapter.realm", "not found (404)"}},
		// The 200-character excerpt ends inside the echoed secret.
		adaptertest.TokenFailure{Name: "long echo cut inside the secret", Force: &adaptertest.Answer{Status: 502, Body: strings.Repeat("x", 150) + "$BODY"},
			Want: revoke.Retry, ErrHas: []string{"HTTP 502", "[redacted]"}},
	)
}

func TestTokenEndpointUnreachableIsRetry(t *testing.T) { vendor.Unreachable(t) }

func TestAdminStatusClassification(t *testing.T) {
	vendor.Statuses(t, adaptertest.StatusCases(
		adaptertest.StatusCase{Name: "403", Status: http.StatusForbidden, Want: revoke.Permanent, ErrHas: "manage-users"},
	))
}

func TestWaitingForTokenHonoursContext(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		<-release // the token request hangs: a renewal is in flight
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	a, _ := newAdapter(t, config(srv.URL, adaptertest.WriteFile(t, secret)))
	done := make(chan revoke.Result)
	go func() { done <- a.Revoke(context.Background(), adaptertest.SessionIntent()) }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := a.Revoke(ctx, adaptertest.SessionIntent())
	close(release)
	if r.Outcome != revoke.Retry || r.Err == nil || !strings.Contains(r.Err.Error(), "keycloak: waiting for an access token") {
		t.Fatalf("result = %+v, want retry while waiting for the token", r)
	}
	if r := <-done; r.Outcome != revoke.Retry || r.Status != http.StatusServiceUnavailable {
		t.Fatalf("renewing call = %+v, want retry 503", r)
	}
}

func TestBadIntents(t *testing.T) { vendor.BadIntents(t) }

func TestNew(t *testing.T) {
	good := revoke.AdapterConfig{URL: "https://kc.example.com/", Realm: realm, ClientID: clientID, ClientSecretFile: adaptertest.WriteFile(t, secret), Timeout: time.Second}
	adaptertest.RefusesConfigs(t, good, []adaptertest.ConfigCase{
		{Name: "no url", Edit: func(c *revoke.AdapterConfig) { c.URL = "" }, Err: "revoke.adapter.url"},
		{Name: "no realm", Edit: func(c *revoke.AdapterConfig) { c.Realm = "" }, Err: "revoke.adapter.realm"},
		{Name: "no client id", Edit: func(c *revoke.AdapterConfig) { c.ClientID = "" }, Err: "revoke.adapter.client_id"},
		{Name: "no secret file", Edit: func(c *revoke.AdapterConfig) { c.ClientSecretFile = "" }, Err: "revoke.adapter.client_secret_file"},
		{Name: "missing secret file", Edit: func(c *revoke.AdapterConfig) { c.ClientSecretFile = adaptertest.Missing(t) }, Err: "revoke.adapter.client_secret_file"},
		{Name: "empty secret file", Edit: func(c *revoke.AdapterConfig) { c.ClientSecretFile = adaptertest.WriteFile(t, "\n") }, Err: "revoke.adapter.client_secret_file"},
	}, New, secret)
	a, err := New(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Endpoint(); got != "https://kc.example.com" {
		t.Fatalf("Endpoint = %q", got)
	}
	var _ revoke.Adapter = a
}
