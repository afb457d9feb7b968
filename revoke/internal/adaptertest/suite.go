package adaptertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

// Vendor describes one adapter and its fake to the shared tests, which are its methods.
type Vendor struct {
	// Start starts a fresh fake of the vendor's API, holding the subjects of
	// the vendor's scope table and of Subject, and returns it with an adapter
	// for it (of the vendor's usual configuration, edited by edit unless nil)
	// and the adapter's clock (nil when it has none).
	Start func(t *testing.T, edit func(*revoke.AdapterConfig)) (*Fake, revoke.Adapter, *Clock)
	// Leaks lists what no error may contain: the planted secrets, fragments of them, the prefix of issued tokens.
	Leaks []string
	// Auth is the Authorization header every API call of a fresh adapter
	// carries when the fake has no token endpoint (with one: the first token).
	Auth string
	// Revoked is the status the API answers the revocation of a subject it holds with.
	Revoked int
	// Subject is an intent whose subject Start's fake holds.
	Subject revoke.Intent
	// Calls is how many API calls revoking Subject takes, or an intent like it for a subject the fake does not hold.
	Calls int
	// Secret is the planted client secret (adapters with a token endpoint).
	Secret string
	// Refusal is the OAuth error text (": error: description") of the token endpoint's answer to a wrong client secret.
	Refusal string
}

// other returns an intent like Subject for the i-th of many subjects the fake does not hold.
func (v Vendor) other(i int) revoke.Intent {
	in := v.Subject
	in.ID = fmt.Sprint(in.ID, "-", i)
	for _, id := range []*string{&in.SessionID, &in.FamilyID, &in.UserID} {
		if *id != "" {
			*id = fmt.Sprint(*id, "-", i)
		}
	}
	return in
}

// ScopeCase is one row of a scope table: an intent and the API calls that revoke its subject.
type ScopeCase struct {
	// Name names the subtest.
	Name string
	// In is the intent.
	In revoke.Intent
	// Calls are the API calls, "METHOD escaped-path", in order.
	Calls []string
	// Repeat is the status of the last call when the same revocation is made again.
	Repeat int
}

// Scopes revokes each case's intent twice with a fresh adapter, and checks
// the calls it makes, their Authorization, and that both are done: the
// first with v.Revoked, the second with the case's Repeat (and a note when
// that is 404).
func (v Vendor) Scopes(t *testing.T, cases []ScopeCase) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			f, a, _ := v.Start(t, nil)
			r := a.Revoke(context.Background(), &tc.In)
			if r.Outcome != revoke.Done || r.Status != v.Revoked || r.Err != nil || r.Note != "" {
				t.Fatalf("first revocation = %+v, want done with %d", r, v.Revoked)
			}
			r = a.Revoke(context.Background(), &tc.In)
			if r.Outcome != revoke.Done || r.Status != tc.Repeat || r.Err != nil || (r.Note == "") != (tc.Repeat != http.StatusNotFound) {
				t.Fatalf("repeated revocation = %+v, want done with %d (and a note if 404)", r, tc.Repeat)
			}
			want := append(append([]string(nil), tc.Calls...), tc.Calls...)
			if fmt.Sprint(f.Calls) != fmt.Sprint(want) {
				t.Fatalf("calls = %q, want %q", f.Calls, want)
			}
			auth := v.Auth
			if f.IsToken != nil {
				auth = f.Bearer(1)
			}
			for _, got := range f.Auths {
				if got != auth {
					t.Fatalf("Authorization = %q, want %q", got, auth)
				}
			}
		})
	}
}

// Statuses has the API answer a session revocation as each case says and
// checks the Result, that its error leaks nothing, and that it took one
// attempt (and one token request, with a token endpoint).
func (v Vendor) Statuses(t *testing.T, cases []StatusCase) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			f, a, _ := v.Start(t, nil)
			f.APIForce = []Answer{{Status: tc.Status, Header: tc.Header, Body: `{"error":"echo $AUTH","message":"echo $AUTH"}`}}
			r := a.Revoke(context.Background(), SessionIntent())
			tc.Check(t, r)
			NoLeak(t, r.Err, v.Leaks...)
			wantTokens := 0
			if f.IsToken != nil {
				wantTokens = 1
			}
			if tokens, api := f.Counts(); tokens != wantTokens || api != 1 {
				t.Fatalf("token requests = %d, API calls = %d; want %d and 1", tokens, api, wantTokens)
			}
		})
	}
}

// BadIntents checks that each of BadIntents fails permanently, naming the intent, without a request.
func (v Vendor) BadIntents(t *testing.T) {
	f, a, _ := v.Start(t, nil)
	for _, in := range BadIntents() {
		r := a.Revoke(context.Background(), &in)
		if r.Outcome != revoke.Permanent || r.Err == nil || !strings.Contains(r.Err.Error(), in.ID) {
			t.Errorf("intent %+v: result = %+v, want permanent naming the intent", in, r)
		}
	}
	if tokens, api := f.Counts(); tokens+api != 0 {
		t.Fatalf("bad intents made requests: %q %q", f.TokenCalls, f.Calls)
	}
}

// Unreachable checks that a revocation whose server is gone is retried, without a status, leaking nothing.
func (v Vendor) Unreachable(t *testing.T) {
	f, a, _ := v.Start(t, nil)
	f.Close()
	r := a.Revoke(context.Background(), SessionIntent())
	if r.Outcome != revoke.Retry || r.Err == nil || r.Status != 0 {
		t.Fatalf("result = %+v, want retry without status", r)
	}
	NoLeak(t, r.Err, v.Leaks...)
}

// TokenCached checks that one token serves many revocations.
func (v Vendor) TokenCached(t *testing.T) {
	f, a, _ := v.Start(t, nil)
	for i := range 5 {
		in := v.other(i)
		if r := a.Revoke(context.Background(), &in); r.Outcome != revoke.Done {
			t.Fatalf("result = %+v", r)
		}
	}
	if tokens, api := f.Counts(); tokens != 1 || api != 5*v.Calls {
		t.Fatalf("token requests = %d, API calls = %d; want 1 and %d", tokens, api, 5*v.Calls)
	}
}

// TokenFetchedOnceUnderConcurrency checks that concurrent first revocations share one token request.
func (v Vendor) TokenFetchedOnceUnderConcurrency(t *testing.T) {
	f, a, _ := v.Start(t, nil)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			in := v.other(i)
			if r := a.Revoke(context.Background(), &in); r.Outcome != revoke.Done {
				t.Errorf("result = %+v", r)
			}
		})
	}
	wg.Wait()
	if tokens, api := f.Counts(); tokens != 1 || api != 32*v.Calls {
		t.Fatalf("token requests = %d, API calls = %d; want 1 and %d", tokens, api, 32*v.Calls)
	}
}

// TokenRenewedBeforeExpiry checks, on the adapter's clock, when tokens of
// several lifetimes are reused and when renewed: TokenRenewBefore ahead of
// their expiry, half-way through a shorter life, after a minute when the
// server states none.
func (v Vendor) TokenRenewedBeforeExpiry(t *testing.T) {
	cases := []struct {
		name      string
		expiresIn int64         // the lifetime the token endpoint states, in seconds
		stillGood time.Duration // the token is reused this long after issue
		renewed   time.Duration // and renewed by this long after issue
	}{
		{"5 min token, 30 s margin", 300, 269 * time.Second, 270 * time.Second},
		{"24 h token, 30 s margin", 86400, 86369 * time.Second, 86370 * time.Second},
		{"short token, half-life", 20, 9 * time.Second, 10 * time.Second},
		{"40 s token, half-life", 40, 19 * time.Second, 20 * time.Second},
		{"no expires_in, one minute", 0, 59 * time.Second, 60 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, a, clk := v.Start(t, nil)
			f.ExpiresIn = tc.expiresIn
			revokeOK := func() {
				t.Helper()
				if r := a.Revoke(context.Background(), SessionIntent()); r.Outcome != revoke.Done {
					t.Fatalf("result = %+v", r)
				}
			}
			revokeOK()
			clk.Advance(tc.stillGood)
			revokeOK()
			if tokens, _ := f.Counts(); tokens != 1 {
				t.Fatalf("token requests = %d before expiry, want 1", tokens)
			}
			clk.Advance(tc.renewed - tc.stillGood)
			revokeOK()
			if tokens, _ := f.Counts(); tokens != 2 {
				t.Fatalf("token requests = %d after expiry, want 2", tokens)
			}
			if got := f.Auths[len(f.Auths)-1]; got != f.Bearer(2) {
				t.Fatalf("Authorization after renewal = %q, want %q", got, f.Bearer(2))
			}
		})
	}
}

// TokenRenewedOnceOn401 checks that a refused cached token is renewed once
// per attempt: the attempt succeeds with the new token, and when that is
// refused too it fails permanently after exactly one renewal.
func (v Vendor) TokenRenewedOnceOn401(t *testing.T) {
	f, a, _ := v.Start(t, nil)
	warm := revoke.Intent{ID: "x", Scope: revoke.ScopeSession, SessionID: "other"} // one call, 404: done
	if r := a.Revoke(context.Background(), &warm); r.Outcome != revoke.Done {
		t.Fatalf("result = %+v", r)
	}
	f.Locked(func() { f.Valid = map[string]bool{} }) // the server restarted, or revoked the token: the cached one is refused
	r := a.Revoke(context.Background(), &v.Subject)
	if r.Outcome != revoke.Done || r.Status != v.Revoked {
		t.Fatalf("result = %+v, want done (%d) after renewal", r, v.Revoked)
	}
	if tokens, api := f.Counts(); tokens != 2 || api != 2+v.Calls {
		t.Fatalf("token requests = %d, API calls = %d; want 2 and %d", tokens, api, 2+v.Calls)
	}
	want := []string{f.Bearer(1), f.Bearer(1)}
	for range v.Calls {
		want = append(want, f.Bearer(2))
	}
	if fmt.Sprint(f.Auths) != fmt.Sprint(want) {
		t.Fatalf("Authorization headers = %q, want %q", f.Auths, want)
	}

	// Fresh tokens refused too: permanent, after exactly one renewal.
	f.Locked(func() { f.Reject = true })
	r = a.Revoke(context.Background(), &v.Subject)
	if r.Outcome != revoke.Permanent || r.Status != http.StatusUnauthorized {
		t.Fatalf("result = %+v, want permanent 401", r)
	}
	if tokens, api := f.Counts(); tokens != 3 || api != 4+v.Calls {
		t.Fatalf("token requests = %d, API calls = %d; want 3 and %d", tokens, api, 4+v.Calls)
	}
	NoLeak(t, r.Err, v.Leaks...)
}

// TokenFailure is one row of a token-endpoint failure table.
type TokenFailure struct {
	// Name names the subtest.
	Name string
	// Force is the token endpoint's canned answer; nil: the fake's own.
	Force *Answer
	// Secret is the client secret file's content, when not the right secret.
	Secret string
	// Edit changes the adapter's configuration; nil: none.
	Edit func(*revoke.AdapterConfig)
	// Want is the outcome the attempt must have.
	Want revoke.Outcome
	// RetryAfter is the RetryAfter it must have.
	RetryAfter time.Duration
	// ErrHas are parts its error must have.
	ErrHas []string
}

// TokenEndpointFailures runs the failures every token endpoint shares, then
// extra, the vendor's own; each must give its outcome, an error naming what
// to check and leaking nothing, and no API call.
func (v Vendor) TokenEndpointFailures(t *testing.T, extra ...TokenFailure) {
	echo := `{"error":"x","request":"$BODY"}`
	cases := append([]TokenFailure{
		{Name: "wrong secret", Secret: "wrong-" + v.Secret, Want: revoke.Permanent,
			ErrHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file", "HTTP 401" + v.Refusal}},
		{Name: "wrong client id", Edit: func(c *revoke.AdapterConfig) { c.ClientID = "someone-else" }, Want: revoke.Permanent,
			ErrHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file"}},
		{Name: "400 invalid client", Force: &Answer{Status: 400, Body: `{"error":"unauthorized_client","error_description":"Client not enabled to retrieve service account","req":"$BODY"}`},
			Want: revoke.Permanent, ErrHas: []string{"revoke.adapter.client_id", "revoke.adapter.client_secret_file"}},
		{Name: "403", Force: &Answer{Status: 403, Body: echo}, Want: revoke.Permanent, ErrHas: []string{"HTTP 403"}},
		{Name: "404", Force: &Answer{Status: 404, Body: "not here"}, Want: revoke.Permanent, ErrHas: []string{"revoke.adapter.url"}},
		{Name: "200 without token", Force: &Answer{Status: 200, Body: `<html>login</html>`}, Want: revoke.Permanent, ErrHas: []string{"access_token"}},
		{Name: "200 JSON without token", Force: &Answer{Status: 200, Body: `{}`}, Want: revoke.Permanent, ErrHas: []string{"access_token"}},
		{Name: "500", Force: &Answer{Status: 500, Body: echo}, Want: revoke.Retry, ErrHas: []string{"HTTP 500"}},
		{Name: "503", Force: &Answer{Status: 503, Body: echo}, Want: revoke.Retry, ErrHas: []string{"HTTP 503"}},
		{Name: "429 Retry-After", Force: &Answer{Status: 429, Header: http.Header{"Retry-After": {"5"}}, Body: echo}, Want: revoke.Retry, RetryAfter: 5 * time.Second, ErrHas: []string{"HTTP 429"}},
		{Name: "JSON echo of the request", Force: &Answer{Status: 500, Body: `{"got":$BODY}`}, Want: revoke.Retry, ErrHas: []string{"HTTP 500", "[redacted]"}},
	}, extra...)
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			f, a, _ := v.Start(t, func(c *revoke.AdapterConfig) {
				if tc.Secret != "" {
					c.ClientSecretFile = WriteFile(t, tc.Secret)
				}
				if tc.Edit != nil {
					tc.Edit(c)
				}
			})
			if tc.Force != nil {
				f.TokenForce = []Answer{*tc.Force}
			}
			r := a.Revoke(context.Background(), SessionIntent())
			if r.Outcome != tc.Want || r.RetryAfter != tc.RetryAfter || r.Err == nil {
				t.Fatalf("result = %+v, want %v with retry-after %v and an error", r, tc.Want, tc.RetryAfter)
			}
			for _, s := range tc.ErrHas {
				if !strings.Contains(r.Err.Error(), s) {
					t.Errorf("error %q does not mention %q", r.Err, s)
				}
			}
			NoLeak(t, r.Err, v.Leaks...)
			if _, api := f.Counts(); api != 0 {
				t.Fatalf("API calls made without a token: %q", f.Calls)
			}
		})
	}
}

// ConfigCase is one row of a table of configurations New must refuse.
type ConfigCase struct {
	// Name names the subtest.
	Name string
	// Edit spoils a good configuration.
	Edit func(*revoke.AdapterConfig)
	// Err is the configuration key the error must name.
	Err string
}

// RefusesConfigs checks that newAdapter refuses good spoiled by each case,
// with an error naming the case's key and none of leaks.
func RefusesConfigs[A any](t *testing.T, good revoke.AdapterConfig, cases []ConfigCase, newAdapter func(revoke.AdapterConfig, *http.Client) (A, error), leaks ...string) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			cfg := good
			tc.Edit(&cfg)
			_, err := newAdapter(cfg, http.DefaultClient)
			if err == nil || !strings.Contains(err.Error(), tc.Err) {
				t.Fatalf("New = %v, want an error naming %s", err, tc.Err)
			}
			NoLeak(t, err, leaks...)
		})
	}
}
