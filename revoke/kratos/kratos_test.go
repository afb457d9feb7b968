package kratos

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/revoke/internal/adaptertest"
)

// secret is planted in the token file; no error may ever contain it.
const secret = "ory_pat_PLANTEDsecret+/=42"

// fakeKratos follows the documented Kratos admin API: DELETE
// /admin/sessions/{id} (204, 404 when unknown or already deactivated) and
// DELETE /admin/identities/{id}/sessions (204, 404 when the identity has
// no sessions or does not exist). It remembers what it revoked. Without an
// API key it accepts any Authorization; with one, only that key.
type fakeKratos struct {
	*adaptertest.Fake
	sessions   map[string]bool // active sessions
	identities map[string]int  // identity id -> active sessions
}

// start starts a fake wanting key ("" for none), holding the subjects of
// the scope table, and an adapter for it, configured with the key when
// withKey is set.
func start(t *testing.T, key string, withKey bool) (*fakeKratos, *Adapter) {
	f := &fakeKratos{
		sessions:   map[string]bool{"sess-1": true, "fam-1": true, "a/b c?d": true},
		identities: map[string]int{"u1": 2, "x/../y": 1},
	}
	f.Fake = &adaptertest.Fake{
		Authorized:   func(auth string) bool { return key == "" || auth == "Bearer "+key },
		Unauthorized: kratosError(http.StatusUnauthorized, "The request could not be authorized"),
		API:          f.serve,
	}
	srv := f.Start(t)
	cfg := revoke.AdapterConfig{Kind: revoke.AdapterKratos, URL: srv.URL + "/", AllowHTTP: true, Timeout: 5 * time.Second}
	if withKey {
		cfg.TokenFile = adaptertest.WriteFile(t, secret+"\n")
	}
	return f, adaptertest.Build(t, cfg, New)
}

func (f *fakeKratos) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodDelete {
		adaptertest.JSON(w, http.StatusMethodNotAllowed, kratosError(http.StatusMethodNotAllowed, "method not allowed"))
		return
	}
	p := r.URL.Path // decoded
	switch {
	case strings.HasPrefix(p, "/admin/sessions/"):
		id := strings.TrimPrefix(p, "/admin/sessions/")
		if !f.sessions[id] {
			adaptertest.JSON(w, http.StatusNotFound, kratosError(http.StatusNotFound, "Unable to locate the resource"))
			return
		}
		f.sessions[id] = false
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, "/admin/identities/") && strings.HasSuffix(p, "/sessions"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/admin/identities/"), "/sessions")
		if f.identities[id] == 0 {
			adaptertest.JSON(w, http.StatusNotFound, kratosError(http.StatusNotFound, "Unable to locate the resource"))
			return
		}
		f.identities[id] = 0
		w.WriteHeader(http.StatusNoContent)
	default:
		adaptertest.JSON(w, http.StatusNotFound, kratosError(http.StatusNotFound, "no route"))
	}
}

// kratosError is the body of a Kratos error answer.
func kratosError(code int, msg string) any {
	return map[string]any{"error": map[string]any{"code": code, "status": http.StatusText(code), "message": msg}}
}

// vendor describes the adapter to the shared tests: with an API key that
// the fake wants, or with neither.
func vendor(withKey bool) adaptertest.Vendor {
	key, auth := "", ""
	if withKey {
		key, auth = secret, "Bearer "+secret
	}
	return adaptertest.Vendor{
		Start: func(t *testing.T, _ func(*revoke.AdapterConfig)) (*adaptertest.Fake, revoke.Adapter, *adaptertest.Clock) {
			f, a := start(t, key, withKey)
			return f.Fake, a, nil
		},
		Leaks:   []string{secret, "PLANTEDsecret"},
		Auth:    auth,
		Revoked: http.StatusNoContent,
	}
}

func TestScopes(t *testing.T) {
	cases := []adaptertest.ScopeCase{
		{Name: "session", In: revoke.Intent{ID: "i1", Scope: revoke.ScopeSession, SessionID: "sess-1", FamilyID: "fam-1", UserID: "u1"}, Calls: []string{"DELETE /admin/sessions/sess-1"}, Repeat: 404},
		{Name: "family uses session id", In: revoke.Intent{ID: "i2", Scope: revoke.ScopeFamily, SessionID: "sess-1", FamilyID: "fam-1"}, Calls: []string{"DELETE /admin/sessions/sess-1"}, Repeat: 404},
		{Name: "family falls back to family id", In: revoke.Intent{ID: "i3", Scope: revoke.ScopeFamily, FamilyID: "fam-1"}, Calls: []string{"DELETE /admin/sessions/fam-1"}, Repeat: 404},
		{Name: "user", In: revoke.Intent{ID: "i4", Scope: revoke.ScopeUser, UserID: "u1", SessionID: "sess-1"}, Calls: []string{"DELETE /admin/identities/u1/sessions"}, Repeat: 404},
		{Name: "ids are path-escaped", In: revoke.Intent{ID: "i5", Scope: revoke.ScopeSession, SessionID: "a/b c?d"}, Calls: []string{"DELETE /admin/sessions/a%2Fb%20c%3Fd"}, Repeat: 404},
		{Name: "user ids are path-escaped", In: revoke.Intent{ID: "i6", Scope: revoke.ScopeUser, UserID: "x/../y"}, Calls: []string{"DELETE /admin/identities/x%2F..%2Fy/sessions"}, Repeat: 404},
	}
	t.Run("without API key", func(t *testing.T) { vendor(false).Scopes(t, cases) })
	t.Run("with API key", func(t *testing.T) { vendor(true).Scopes(t, cases) })
}

func TestStatusClassification(t *testing.T) {
	vendor(true).Statuses(t, adaptertest.StatusCases(
		adaptertest.StatusCase{Name: "401", Status: http.StatusUnauthorized, Want: revoke.Permanent, ErrHas: "revoke.adapter.token_file"},
		adaptertest.StatusCase{Name: "403", Status: http.StatusForbidden, Want: revoke.Permanent, ErrHas: "revoke.adapter.token_file"},
	))
}

func TestUnauthorizedWithoutKey(t *testing.T) {
	_, a := start(t, secret, false) // the server wants a key the adapter does not have
	r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeUser, UserID: "u"})
	if r.Outcome != revoke.Permanent || r.Status != http.StatusUnauthorized || !strings.Contains(r.Err.Error(), "revoke.adapter.token_file") {
		t.Fatalf("result = %+v, want permanent 401 naming revoke.adapter.token_file", r)
	}
}

func TestBadIntents(t *testing.T) { vendor(false).BadIntents(t) }

func TestTransportErrorIsRetry(t *testing.T) { vendor(true).Unreachable(t) }

func TestNewAndEndpoint(t *testing.T) {
	adaptertest.RefusesConfigs(t, revoke.AdapterConfig{URL: "https://kratos.example.com"}, []adaptertest.ConfigCase{
		{Name: "missing token file", Edit: func(c *revoke.AdapterConfig) { c.TokenFile = adaptertest.Missing(t) }, Err: "revoke.adapter.token_file"},
		{Name: "empty token file", Edit: func(c *revoke.AdapterConfig) { c.TokenFile = adaptertest.WriteFile(t, "\n") }, Err: "revoke.adapter.token_file"},
		{Name: "no url", Edit: func(c *revoke.AdapterConfig) { *c = revoke.AdapterConfig{} }, Err: "revoke.adapter.url"},
	}, New, secret)
	a, err := New(revoke.AdapterConfig{URL: "https://kratos.example.com:4434/admin-base/", Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Endpoint(); got != "https://kratos.example.com:4434" {
		t.Fatalf("Endpoint = %q", got)
	}
	var _ revoke.Adapter = a
}
