package kratos

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

// secret is planted in the token file; no error may ever contain it.
const secret = "ory_pat_PLANTEDsecret+/=42"

// fakeKratos follows the documented Kratos admin API: DELETE
// /admin/sessions/{id} (204, 404 when unknown or already deactivated) and
// DELETE /admin/identities/{id}/sessions (204, 404 when the identity has
// no sessions or does not exist). It remembers what it revoked.
type fakeKratos struct {
	t     *testing.T
	token string // the API key the server expects; "" accepts no Authorization

	mu         sync.Mutex
	sessions   map[string]bool // active sessions
	identities map[string]int  // identity id -> active sessions
	force      []forced        // answers to give instead, in order
	calls      []string        // "METHOD escaped-path"
	auths      []string        // Authorization headers seen
}

type forced struct {
	status int
	header http.Header
	body   string
}

func newFake(t *testing.T, token string) (*fakeKratos, *httptest.Server) {
	f := &fakeKratos{t: t, token: token, sessions: map[string]bool{}, identities: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeKratos) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.EscapedPath())
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	if len(f.force) > 0 {
		a := f.force[0]
		f.force = f.force[1:]
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.status)
		// Echo the credentials back, as a careless proxy might: the adapter must redact them.
		w.Write([]byte(strings.ReplaceAll(a.body, "$AUTH", r.Header.Get("Authorization"))))
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		kratosError(w, http.StatusUnauthorized, "The request could not be authorized")
		return
	}
	if r.Method != http.MethodDelete {
		kratosError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	p := r.URL.Path // decoded
	switch {
	case strings.HasPrefix(p, "/admin/sessions/"):
		id := strings.TrimPrefix(p, "/admin/sessions/")
		if !f.sessions[id] {
			kratosError(w, http.StatusNotFound, "Unable to locate the resource")
			return
		}
		f.sessions[id] = false
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, "/admin/identities/") && strings.HasSuffix(p, "/sessions"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/admin/identities/"), "/sessions")
		if f.identities[id] == 0 {
			kratosError(w, http.StatusNotFound, "Unable to locate the resource")
			return
		}
		f.identities[id] = 0
		w.WriteHeader(http.StatusNoContent)
	default:
		kratosError(w, http.StatusNotFound, "no route")
	}
}

func kratosError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "status": http.StatusText(code), "message": msg}})
}

func (f *fakeKratos) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func writeSecret(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newAdapter(t *testing.T, srv *httptest.Server, withToken bool) *Adapter {
	cfg := revoke.AdapterConfig{Kind: revoke.AdapterKratos, URL: srv.URL + "/", AllowHTTP: true, Timeout: 5 * time.Second}
	if withToken {
		cfg.TokenFile = writeSecret(t, secret+"\n")
	}
	client, err := revoke.NewHTTPClient(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func checkNoSecret(t *testing.T, r revoke.Result) {
	t.Helper()
	if r.Err == nil {
		return
	}
	for _, s := range []string{secret, "PLANTEDsecret"} {
		if strings.Contains(r.Err.Error(), s) {
			t.Fatalf("error leaks the secret: %v", r.Err)
		}
	}
}

func TestScopes(t *testing.T) {
	tests := []struct {
		name     string
		in       revoke.Intent
		wantCall string
	}{
		{"session", revoke.Intent{ID: "i1", Scope: revoke.ScopeSession, SessionID: "sess-1", FamilyID: "fam-1", UserID: "u1"}, "DELETE /admin/sessions/sess-1"},
		{"family uses session id", revoke.Intent{ID: "i2", Scope: revoke.ScopeFamily, SessionID: "sess-1", FamilyID: "fam-1"}, "DELETE /admin/sessions/sess-1"},
		{"family falls back to family id", revoke.Intent{ID: "i3", Scope: revoke.ScopeFamily, FamilyID: "fam-1"}, "DELETE /admin/sessions/fam-1"},
		{"user", revoke.Intent{ID: "i4", Scope: revoke.ScopeUser, UserID: "u1", SessionID: "sess-1"}, "DELETE /admin/identities/u1/sessions"},
		{"ids are path-escaped", revoke.Intent{ID: "i5", Scope: revoke.ScopeSession, SessionID: "a/b c?d"}, "DELETE /admin/sessions/a%2Fb%20c%3Fd"},
		{"user ids are path-escaped", revoke.Intent{ID: "i6", Scope: revoke.ScopeUser, UserID: "x/../y"}, "DELETE /admin/identities/x%2F..%2Fy/sessions"},
	}
	for _, tc := range tests {
		for _, withToken := range []bool{false, true} {
			name := tc.name
			if withToken {
				name += " with API key"
			}
			t.Run(name, func(t *testing.T) {
				token := ""
				if withToken {
					token = secret
				}
				f, srv := newFake(t, token)
				for _, id := range []string{"sess-1", "fam-1", "a/b c?d"} {
					f.sessions[id] = true
				}
				f.identities["u1"], f.identities["x/../y"] = 2, 1
				a := newAdapter(t, srv, withToken)

				r := a.Revoke(context.Background(), &tc.in)
				if r.Outcome != revoke.Done || r.Status != http.StatusNoContent || r.Note != "" {
					t.Fatalf("first revocation = %+v, want done with 204", r)
				}
				// The same revocation again: Kratos answers 404, which is done.
				r = a.Revoke(context.Background(), &tc.in)
				if r.Outcome != revoke.Done || r.Status != http.StatusNotFound || r.Note == "" {
					t.Fatalf("repeated revocation = %+v, want done with 404 and a note", r)
				}
				calls := f.takeCalls()
				if len(calls) != 2 || calls[0] != tc.wantCall || calls[1] != tc.wantCall {
					t.Fatalf("calls = %q, want %q twice", calls, tc.wantCall)
				}
				wantAuth := ""
				if withToken {
					wantAuth = "Bearer " + secret
				}
				for _, got := range f.auths {
					if got != wantAuth {
						t.Fatalf("Authorization = %q, want %q", got, wantAuth)
					}
				}
			})
		}
	}
}

func TestStatusClassification(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     http.Header
		want       revoke.Outcome
		retryAfter time.Duration
		errHas     string
	}{
		{"204", http.StatusNoContent, nil, revoke.Done, 0, ""},
		{"200", http.StatusOK, nil, revoke.Done, 0, ""},
		{"404", http.StatusNotFound, nil, revoke.Done, 0, ""},
		{"409", http.StatusConflict, nil, revoke.Done, 0, ""},
		{"429 Retry-After", http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, revoke.Retry, 7 * time.Second, "HTTP 429"},
		{"429 bare", http.StatusTooManyRequests, nil, revoke.Retry, 0, "HTTP 429"},
		{"408", http.StatusRequestTimeout, nil, revoke.Retry, 0, "HTTP 408"},
		{"500", http.StatusInternalServerError, nil, revoke.Retry, 0, "HTTP 500"},
		{"502", http.StatusBadGateway, nil, revoke.Retry, 0, "HTTP 502"},
		{"503 Retry-After", http.StatusServiceUnavailable, http.Header{"Retry-After": {"3"}}, revoke.Retry, 3 * time.Second, "HTTP 503"},
		{"400", http.StatusBadRequest, nil, revoke.Permanent, 0, "HTTP 400"},
		{"401", http.StatusUnauthorized, nil, revoke.Permanent, 0, "revoke.adapter.token_file"},
		{"403", http.StatusForbidden, nil, revoke.Permanent, 0, "revoke.adapter.token_file"},
		{"405", http.StatusMethodNotAllowed, nil, revoke.Permanent, 0, "HTTP 405"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t, secret)
			f.force = []forced{{status: tc.status, header: tc.header, body: `{"error":{"message":"echo $AUTH"}}`}}
			a := newAdapter(t, srv, true)
			r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeSession, SessionID: "s"})
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
		})
	}
}

func TestUnauthorizedWithoutKey(t *testing.T) {
	_, srv := newFake(t, secret) // the server wants a key the adapter does not have
	a := newAdapter(t, srv, false)
	r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeUser, UserID: "u"})
	if r.Outcome != revoke.Permanent || r.Status != http.StatusUnauthorized || !strings.Contains(r.Err.Error(), "revoke.adapter.token_file") {
		t.Fatalf("result = %+v, want permanent 401 naming revoke.adapter.token_file", r)
	}
}

func TestBadIntents(t *testing.T) {
	f, srv := newFake(t, "")
	a := newAdapter(t, srv, false)
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
	if c := f.takeCalls(); len(c) != 0 {
		t.Fatalf("bad intents made calls: %q", c)
	}
}

func TestTransportErrorIsRetry(t *testing.T) {
	_, srv := newFake(t, secret)
	a := newAdapter(t, srv, true)
	srv.Close()
	r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeSession, SessionID: "s"})
	if r.Outcome != revoke.Retry || r.Err == nil || r.Status != 0 {
		t.Fatalf("result = %+v, want retry without status", r)
	}
	checkNoSecret(t, r)
}

func TestNewAndEndpoint(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		name string
		cfg  revoke.AdapterConfig
		err  string
	}{
		{"missing token file", revoke.AdapterConfig{URL: "https://kratos.example.com", TokenFile: filepath.Join(dir, "nope")}, "revoke.adapter.token_file"},
		{"empty token file", revoke.AdapterConfig{URL: "https://kratos.example.com", TokenFile: empty}, "revoke.adapter.token_file"},
		{"no url", revoke.AdapterConfig{}, "revoke.adapter.url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, http.DefaultClient)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("New = %v, want an error naming %s", err, tc.err)
			}
		})
	}
	a, err := New(revoke.AdapterConfig{URL: "https://kratos.example.com:4434/admin-base/", Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Endpoint(); got != "https://kratos.example.com:4434" {
		t.Fatalf("Endpoint = %q", got)
	}
	var _ revoke.Adapter = a
}
