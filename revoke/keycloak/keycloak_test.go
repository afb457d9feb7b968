package keycloak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
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
	mu         sync.Mutex
	expiresIn  int64
	issued     int
	valid      map[string]bool
	sessions   map[string]bool
	users      map[string]bool
	tokenForce []forced // answers the token endpoint gives instead, in order
	adminForce []forced // answers the admin API gives instead, in order
	reject     bool     // refuse every admin call with 401
	tokenForms []url.Values
	tokenCT    []string
	tokenCalls []string
	calls      []string // admin calls: "METHOD escaped-path"
	auths      []string
}

type forced struct {
	status int
	header http.Header
	body   string // $BODY and $AUTH are replaced by the request's body and Authorization
}

func newFake(t *testing.T) (*fakeKeycloak, *httptest.Server) {
	f := &fakeKeycloak{expiresIn: 300, valid: map[string]bool{}, sessions: map[string]bool{}, users: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeKeycloak) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	if strings.HasPrefix(p, "/realms/") {
		f.tokenCalls = append(f.tokenCalls, r.Method+" "+r.URL.EscapedPath())
		f.tokenCT = append(f.tokenCT, r.Header.Get("Content-Type"))
		form, _ := url.ParseQuery(body)
		f.tokenForms = append(f.tokenForms, form)
		if len(f.tokenForce) > 0 {
			a := f.tokenForce[0]
			f.tokenForce = f.tokenForce[1:]
			answer(a)
			return
		}
		if p != "/realms/"+realm+"/protocol/openid-connect/token" {
			jsonAnswer(w, http.StatusNotFound, map[string]any{"error": "Realm does not exist"})
			return
		}
		if r.Method != http.MethodPost || form.Get("grant_type") != "client_credentials" {
			jsonAnswer(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
			return
		}
		if form.Get("client_id") != clientID || form.Get("client_secret") != secret {
			// Keycloak does not echo the secret; this fake does, to prove the adapter redacts it.
			jsonAnswer(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials", "got": body})
			return
		}
		f.issued++
		tok := fmt.Sprintf("access-%d", f.issued)
		f.valid[tok] = true
		jsonAnswer(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": f.expiresIn, "token_type": "Bearer", "scope": "profile email"})
		return
	}
	f.calls = append(f.calls, r.Method+" "+r.URL.EscapedPath())
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	if len(f.adminForce) > 0 {
		a := f.adminForce[0]
		f.adminForce = f.adminForce[1:]
		answer(a)
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if f.reject || !f.valid[tok] {
		jsonAnswer(w, http.StatusUnauthorized, map[string]any{"error": "HTTP 401 Unauthorized"})
		return
	}
	prefix := "/admin/realms/" + realm
	switch {
	case r.Method == http.MethodDelete && strings.HasPrefix(p, prefix+"/sessions/"):
		id := strings.TrimPrefix(p, prefix+"/sessions/")
		if !f.sessions[id] {
			jsonAnswer(w, http.StatusNotFound, map[string]any{"error": "Sesssion not found"})
			return
		}
		f.sessions[id] = false
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && strings.HasPrefix(p, prefix+"/users/") && strings.HasSuffix(p, "/logout"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, prefix+"/users/"), "/logout")
		if !f.users[id] {
			jsonAnswer(w, http.StatusNotFound, map[string]any{"error": "User not found"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		jsonAnswer(w, http.StatusNotFound, map[string]any{"error": "RESTEASY003210: Could not find resource"})
	}
}

func jsonAnswer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// counts returns the token requests and admin calls made so far.
func (f *fakeKeycloak) counts() (tokens, admin int) {
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

func config(srv *httptest.Server, secretFile string) revoke.AdapterConfig {
	return revoke.AdapterConfig{Kind: revoke.AdapterKeycloak, URL: srv.URL + "/", AllowHTTP: true, Realm: realm,
		ClientID: clientID, ClientSecretFile: secretFile, Timeout: 5 * time.Second}
}

func newAdapter(t *testing.T, srv *httptest.Server) (*Adapter, *clock) {
	return newAdapterWith(t, config(srv, writeFile(t, secret+"\n")))
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
	for _, s := range []string{secret, url.QueryEscape(secret), "PLANTED", "access-"} {
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
		wantCall   string
		wantRepeat int // status of the same revocation again
	}{
		{"session", revoke.Intent{ID: "i1", Scope: revoke.ScopeSession, SessionID: "s1", FamilyID: "f1", UserID: "u1"}, "DELETE /admin/realms/acme/sessions/s1", http.StatusNotFound},
		{"family uses session id", revoke.Intent{ID: "i2", Scope: revoke.ScopeFamily, SessionID: "s1", FamilyID: "f1"}, "DELETE /admin/realms/acme/sessions/s1", http.StatusNotFound},
		{"family falls back to family id", revoke.Intent{ID: "i3", Scope: revoke.ScopeFamily, FamilyID: "f1"}, "DELETE /admin/realms/acme/sessions/f1", http.StatusNotFound},
		{"user", revoke.Intent{ID: "i4", Scope: revoke.ScopeUser, UserID: "u1", SessionID: "s1"}, "POST /admin/realms/acme/users/u1/logout", http.StatusNoContent},
		{"ids are path-escaped", revoke.Intent{ID: "i5", Scope: revoke.ScopeSession, SessionID: "a/b c"}, "DELETE /admin/realms/acme/sessions/a%2Fb%20c", http.StatusNotFound},
		{"user ids are path-escaped", revoke.Intent{ID: "i6", Scope: revoke.ScopeUser, UserID: "../x"}, "POST /admin/realms/acme/users/..%2Fx/logout", http.StatusNoContent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			for _, id := range []string{"s1", "f1", "a/b c"} {
				f.sessions[id] = true
			}
			f.users["u1"], f.users["../x"] = true, true
			a, _ := newAdapter(t, srv)
			r := a.Revoke(context.Background(), &tc.in)
			if r.Outcome != revoke.Done || r.Status != http.StatusNoContent || r.Err != nil {
				t.Fatalf("first revocation = %+v, want done with 204", r)
			}
			r = a.Revoke(context.Background(), &tc.in)
			if r.Outcome != revoke.Done || r.Status != tc.wantRepeat || r.Err != nil {
				t.Fatalf("repeated revocation = %+v, want done with %d", r, tc.wantRepeat)
			}
			if tc.wantRepeat == http.StatusNotFound && r.Note == "" {
				t.Fatalf("a 404 done has no note: %+v", r)
			}
			if len(f.calls) != 2 || f.calls[0] != tc.wantCall || f.calls[1] != tc.wantCall {
				t.Fatalf("admin calls = %q, want %q twice", f.calls, tc.wantCall)
			}
			for _, got := range f.auths {
				if got != "Bearer access-1" {
					t.Fatalf("Authorization = %q, want Bearer access-1", got)
				}
			}
		})
	}
}

func TestUnknownUserIsDone(t *testing.T) {
	_, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	r := a.Revoke(context.Background(), &revoke.Intent{ID: "i", Scope: revoke.ScopeUser, UserID: "ghost"})
	if r.Outcome != revoke.Done || r.Status != http.StatusNotFound {
		t.Fatalf("result = %+v, want done (404)", r)
	}
}

func TestTokenRequest(t *testing.T) {
	f, srv := newFake(t)
	f.sessions["s1"] = true
	a, _ := newAdapter(t, srv)
	if r := a.Revoke(context.Background(), &sessionIntent); r.Outcome != revoke.Done {
		t.Fatalf("result = %+v", r)
	}
	if len(f.tokenCalls) != 1 || f.tokenCalls[0] != "POST /realms/acme/protocol/openid-connect/token" {
		t.Fatalf("token calls = %q", f.tokenCalls)
	}
	if f.tokenCT[0] != "application/x-www-form-urlencoded" {
		t.Fatalf("token Content-Type = %q", f.tokenCT[0])
	}
	want := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	if got := f.tokenForms[0]; got.Encode() != want.Encode() {
		t.Fatalf("token form = %v, want %v", got, want)
	}
}

func TestTokenCached(t *testing.T) {
	f, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	for i := range 5 {
		in := revoke.Intent{ID: fmt.Sprint(i), Scope: revoke.ScopeSession, SessionID: fmt.Sprint("s", i)}
		if r := a.Revoke(context.Background(), &in); r.Outcome != revoke.Done {
			t.Fatalf("result = %+v", r)
		}
	}
	if tokens, admin := f.counts(); tokens != 1 || admin != 5 {
		t.Fatalf("token requests = %d, admin calls = %d; want 1 and 5", tokens, admin)
	}
}

func TestTokenFetchedOnceUnderConcurrency(t *testing.T) {
	f, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			in := revoke.Intent{ID: fmt.Sprint(i), Scope: revoke.ScopeSession, SessionID: fmt.Sprint("s", i)}
			if r := a.Revoke(context.Background(), &in); r.Outcome != revoke.Done {
				t.Errorf("result = %+v", r)
			}
		})
	}
	wg.Wait()
	if tokens, admin := f.counts(); tokens != 1 || admin != 32 {
		t.Fatalf("token requests = %d, admin calls = %d; want 1 and 32", tokens, admin)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int64
		stillGood time.Duration // the token is reused this long after issue
		renewed   time.Duration // and renewed by this long after issue
	}{
		{"5 min token, 30 s margin", 300, 269 * time.Second, 270 * time.Second},
		{"short token, half-life", 20, 9 * time.Second, 10 * time.Second},
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
			if got := f.auths[len(f.auths)-1]; got != "Bearer access-2" {
				t.Fatalf("Authorization after renewal = %q", got)
			}
		})
	}
}

func TestTokenRenewedOnceOn401(t *testing.T) {
	f, srv := newFake(t)
	f.sessions["s1"] = true
	a, _ := newAdapter(t, srv)
	if r := a.Revoke(context.Background(), &revoke.Intent{ID: "x", Scope: revoke.ScopeSession, SessionID: "other"}); r.Outcome != revoke.Done {
		t.Fatalf("result = %+v", r)
	}
	f.mu.Lock()
	f.valid = map[string]bool{} // Keycloak restarted, or the token was revoked: the cached one is refused
	f.mu.Unlock()
	r := a.Revoke(context.Background(), &sessionIntent)
	if r.Outcome != revoke.Done || r.Status != http.StatusNoContent {
		t.Fatalf("result = %+v, want done after renewal", r)
	}
	if tokens, admin := f.counts(); tokens != 2 || admin != 3 {
		t.Fatalf("token requests = %d, admin calls = %d; want 2 and 3", tokens, admin)
	}
	if f.auths[1] != "Bearer access-1" || f.auths[2] != "Bearer access-2" {
		t.Fatalf("Authorization headers = %q", f.auths)
	}

	// A fresh token refused too: permanent, after exactly one renewal.
	f.mu.Lock()
	f.reject = true
	f.mu.Unlock()
	r = a.Revoke(context.Background(), &sessionIntent)
	if r.Outcome != revoke.Permanent || r.Status != http.StatusUnauthorized {
		t.Fatalf("result = %+v, want permanent 401", r)
	}
	if tokens, admin := f.counts(); tokens != 3 || admin != 5 {
		t.Fatalf("token requests = %d, admin calls = %d; want 3 and 5", tokens, admin)
	}
	checkNoSecret(t, r)
}

func TestTokenEndpointFailures(t *testing.T) {
	echo := `{"error":"x","request":"$BODY"}`
	tests := []struct {
		name       string
		force      *forced
		secret     string // the secret file's content, when not the right secret
		cfg        func(*revoke.AdapterConfig)
		want       revoke.Outcome
		retryAfter time.Duration
		errHas     []string
	}{
		{name: "wrong secret", secret: "wrong-" + secret, want: revoke.Permanent,
			errHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file", "HTTP 401: unauthorized_client: Invalid client or Invalid client credentials"}},
		{name: "wrong client id", cfg: func(c *revoke.AdapterConfig) { c.ClientID = "someone-else" }, want: revoke.Permanent,
			errHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file"}},
		{name: "400 invalid client", force: &forced{status: 400, body: `{"error":"unauthorized_client","error_description":"Client not enabled to retrieve service account","req":"$BODY"}`},
			want: revoke.Permanent, errHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file"}},
		{name: "unknown realm", cfg: func(c *revoke.AdapterConfig) { c.Realm = "nope" }, want: revoke.Permanent, errHas: []string{"revoke.adapter.realm"}},
		{name: "403", force: &forced{status: 403, body: echo}, want: revoke.Permanent, errHas: []string{"HTTP 403"}},
		{name: "200 without token", force: &forced{status: 200, body: `<html>login</html>`}, want: revoke.Permanent, errHas: []string{"access_token"}},
		{name: "503", force: &forced{status: 503, body: echo}, want: revoke.Retry, errHas: []string{"HTTP 503"}},
		{name: "500", force: &forced{status: 500, body: echo}, want: revoke.Retry, errHas: []string{"HTTP 500"}},
		{name: "long echo cut inside the secret", force: &forced{status: 502, body: strings.Repeat("x", 150) + "$BODY"}, want: revoke.Retry, errHas: []string{"HTTP 502", "[redacted]"}}, // the 200-character excerpt ends inside the secret
		{name: "429 Retry-After", force: &forced{status: 429, header: http.Header{"Retry-After": {"5"}}, body: echo}, want: revoke.Retry, retryAfter: 5 * time.Second, errHas: []string{"HTTP 429"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			content := secret
			if tc.secret != "" {
				content = tc.secret
			}
			cfg := config(srv, writeFile(t, content))
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if tc.force != nil {
				f.tokenForce = []forced{*tc.force}
			}
			a, _ := newAdapterWith(t, cfg)
			r := a.Revoke(context.Background(), &sessionIntent)
			if r.Outcome != tc.want || r.RetryAfter != tc.retryAfter || r.Err == nil {
				t.Fatalf("result = %+v, want %v with retry-after %v and an error", r, tc.want, tc.retryAfter)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(r.Err.Error(), s) {
					t.Errorf("error %q does not mention %q", r.Err, s)
				}
			}
			checkNoSecret(t, r)
			if _, admin := f.counts(); admin != 0 {
				t.Fatalf("admin calls made without a token: %q", f.calls)
			}
		})
	}
}

func TestTokenEndpointUnreachableIsRetry(t *testing.T) {
	_, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	srv.Close()
	r := a.Revoke(context.Background(), &sessionIntent)
	if r.Outcome != revoke.Retry || r.Err == nil {
		t.Fatalf("result = %+v, want retry", r)
	}
	checkNoSecret(t, r)
}

func TestAdminStatusClassification(t *testing.T) {
	echo := `{"error":"echo $AUTH"}`
	tests := []struct {
		name       string
		status     int
		header     http.Header
		want       revoke.Outcome
		retryAfter time.Duration
		errHas     string
	}{
		{"204", 204, nil, revoke.Done, 0, ""},
		{"404", 404, nil, revoke.Done, 0, ""},
		{"409", 409, nil, revoke.Done, 0, ""},
		{"429 Retry-After", 429, http.Header{"Retry-After": {"11"}}, revoke.Retry, 11 * time.Second, "HTTP 429"},
		{"408", 408, nil, revoke.Retry, 0, "HTTP 408"},
		{"500", 500, nil, revoke.Retry, 0, "HTTP 500"},
		{"503", 503, nil, revoke.Retry, 0, "HTTP 503"},
		{"400", 400, nil, revoke.Permanent, 0, "HTTP 400"},
		{"403", 403, nil, revoke.Permanent, 0, "manage-users"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.adminForce = []forced{{status: tc.status, header: tc.header, body: echo}}
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
			if tokens, admin := f.counts(); tokens != 1 || admin != 1 {
				t.Fatalf("token requests = %d, admin calls = %d; want one attempt", tokens, admin)
			}
		})
	}
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
	a, _ := newAdapterWith(t, config(srv, writeFile(t, secret)))
	done := make(chan revoke.Result)
	go func() { done <- a.Revoke(context.Background(), &sessionIntent) }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := a.Revoke(ctx, &sessionIntent)
	close(release)
	if r.Outcome != revoke.Retry || r.Err == nil || !strings.Contains(r.Err.Error(), "keycloak: waiting for an access token") {
		t.Fatalf("result = %+v, want retry while waiting for the token", r)
	}
	if r := <-done; r.Outcome != revoke.Retry || r.Status != http.StatusServiceUnavailable {
		t.Fatalf("renewing call = %+v, want retry 503", r)
	}
}

func TestBadIntents(t *testing.T) {
	f, srv := newFake(t)
	a, _ := newAdapter(t, srv)
	for _, in := range []revoke.Intent{
		{ID: "a", Scope: revoke.ScopeSession, FamilyID: "f", UserID: "u"},
		{ID: "b", Scope: revoke.ScopeFamily, UserID: "u"},
		{ID: "c", Scope: revoke.ScopeUser, SessionID: "s"},
		{ID: "d", Scope: "realm", UserID: "u"},
	} {
		r := a.Revoke(context.Background(), &in)
		if r.Outcome != revoke.Permanent || r.Err == nil || !strings.Contains(r.Err.Error(), in.ID) {
			t.Errorf("intent %+v: result = %+v, want permanent naming the intent", in, r)
		}
	}
	if tokens, admin := f.counts(); tokens+admin != 0 {
		t.Fatalf("bad intents made calls")
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	good := revoke.AdapterConfig{URL: "https://kc.example.com/", Realm: realm, ClientID: clientID, ClientSecretFile: writeFile(t, secret), Timeout: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*revoke.AdapterConfig)
		err  string
	}{
		{"no url", func(c *revoke.AdapterConfig) { c.URL = "" }, "revoke.adapter.url"},
		{"no realm", func(c *revoke.AdapterConfig) { c.Realm = "" }, "revoke.adapter.realm"},
		{"no client id", func(c *revoke.AdapterConfig) { c.ClientID = "" }, "revoke.adapter.client_id"},
		{"no secret file", func(c *revoke.AdapterConfig) { c.ClientSecretFile = "" }, "revoke.adapter.client_secret_file"},
		{"missing secret file", func(c *revoke.AdapterConfig) { c.ClientSecretFile = filepath.Join(dir, "nope") }, "revoke.adapter.client_secret_file"},
		{"empty secret file", func(c *revoke.AdapterConfig) { c.ClientSecretFile = empty }, "revoke.adapter.client_secret_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New(cfg, http.DefaultClient)
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), secret) {
				t.Fatalf("New = %v, want an error naming %s", err, tc.err)
			}
		})
	}
	a, err := New(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Endpoint(); got != "https://kc.example.com" {
		t.Fatalf("Endpoint = %q", got)
	}
	var _ revoke.Adapter = a
}
