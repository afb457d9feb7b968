// Package adaptertest holds what the tests of the session-API adapters
// (revoke/kratos, revoke/keycloak, revoke/auth0) share: the vendor-neutral
// half of a fake vendor API (request log, canned answers, a token endpoint
// that issues and checks bearer tokens), a fake clock, planted-secret
// checks, the status-classification and token-endpoint tables, and the
// test bodies every adapter runs against its own fake. It is imported only
// by tests.
package adaptertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Answer is a canned answer a Fake gives instead of its own.
type Answer struct {
	// Status is the HTTP status.
	Status int
	// Header holds extra answer headers.
	Header http.Header
	// Body is the answer body; $BODY and $AUTH in it are replaced by the request's body and Authorization header, echoing them as a careless server or proxy might.
	Body string
}

// write sends a for a request r whose body was body.
func (a Answer) write(w http.ResponseWriter, r *http.Request, body string) {
	for k, v := range a.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.Status)
	s := strings.ReplaceAll(a.Body, "$BODY", body)
	w.Write([]byte(strings.ReplaceAll(s, "$AUTH", r.Header.Get("Authorization"))))
}

// JSON answers with code and v encoded as JSON.
func JSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Fake is the vendor-neutral half of a fake vendor API, an http.Handler. It
// logs every request, gives the canned answers queued in TokenForce and
// APIForce first, runs an OAuth token endpoint that issues numbered bearer
// tokens (when IsToken is set), refuses API calls that are not authorized
// with 401, and hands the others to API. It serves one request at a time,
// holding a lock that also guards the exported state and the vendor's own.
type Fake struct {
	// IsToken reports whether a request path is the token endpoint's; nil: the API has none.
	IsToken func(path string) bool
	// Grant judges a token request no canned answer pre-empted: code 0 issues a token, another code is answered with that status and body as JSON.
	Grant func(r *http.Request, body string) (code int, answer any)
	// TokenPrefix starts the tokens the fake issues: "access-" issues access-1, access-2, and so on.
	TokenPrefix string
	// Scope is the scope the token answers state.
	Scope string
	// Authorized reports whether an API call's Authorization header is accepted; nil: a token the fake issued and still holds valid, while Reject is false.
	Authorized func(auth string) bool
	// Unauthorized is the JSON body of the 401 that refuses an unauthorized API call.
	Unauthorized any
	// API answers an authorized API call that no canned answer pre-empted.
	API func(w http.ResponseWriter, r *http.Request)

	mu  sync.Mutex
	srv *httptest.Server

	// ExpiresIn is the expires_in the token answers state, in seconds.
	ExpiresIn int64
	// Issued counts the tokens issued.
	Issued int
	// Valid holds the tokens API calls may bear.
	Valid map[string]bool
	// Reject refuses every API call with 401.
	Reject bool
	// TokenForce holds canned answers for the next token requests, in order.
	TokenForce []Answer
	// APIForce holds canned answers for the next API calls, in order.
	APIForce []Answer
	// TokenCalls logs the token requests: "METHOD escaped-path".
	TokenCalls []string
	// TokenTypes logs the token requests' Content-Type headers.
	TokenTypes []string
	// TokenBodies logs the token requests' bodies.
	TokenBodies []string
	// Calls logs the API calls: "METHOD escaped-path".
	Calls []string
	// Auths logs the API calls' Authorization headers.
	Auths []string
}

// Start serves f on a new local server that t's cleanup closes, and returns it.
func (f *Fake) Start(t *testing.T) *httptest.Server {
	if f.Valid == nil {
		f.Valid = map[string]bool{}
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f.srv
}

// Close stops the server Start started, so that calls to it fail.
func (f *Fake) Close() { f.srv.Close() }

// Locked runs fn holding the fake's lock, to change its state between requests.
func (f *Fake) Locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// Counts returns how many token requests and API calls the fake has had.
func (f *Fake) Counts() (tokens, api int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.TokenCalls), len(f.Calls)
}

// Bearer returns the Authorization header carrying the n-th token the fake issues.
func (f *Fake) Bearer(n int) string { return fmt.Sprintf("Bearer %s%d", f.TokenPrefix, n) }

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	body := string(raw)
	if f.IsToken != nil && f.IsToken(r.URL.Path) {
		f.token(w, r, body)
		return
	}
	f.Calls = append(f.Calls, r.Method+" "+r.URL.EscapedPath())
	f.Auths = append(f.Auths, r.Header.Get("Authorization"))
	if a, ok := next(&f.APIForce); ok {
		a.write(w, r, body)
		return
	}
	if !f.authorized(r.Header.Get("Authorization")) {
		JSON(w, http.StatusUnauthorized, f.Unauthorized)
		return
	}
	f.API(w, r)
}

// token answers a token request.
func (f *Fake) token(w http.ResponseWriter, r *http.Request, body string) {
	f.TokenCalls = append(f.TokenCalls, r.Method+" "+r.URL.EscapedPath())
	f.TokenTypes = append(f.TokenTypes, r.Header.Get("Content-Type"))
	f.TokenBodies = append(f.TokenBodies, body)
	if a, ok := next(&f.TokenForce); ok {
		a.write(w, r, body)
		return
	}
	if code, answer := f.Grant(r, body); code != 0 {
		JSON(w, code, answer)
		return
	}
	f.Issued++
	tok := fmt.Sprint(f.TokenPrefix, f.Issued)
	f.Valid[tok] = true
	JSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": f.ExpiresIn, "token_type": "Bearer", "scope": f.Scope})
}

// authorized reports whether an API call bearing auth is accepted.
func (f *Fake) authorized(auth string) bool {
	if f.Authorized != nil {
		return f.Authorized(auth)
	}
	tok, _ := strings.CutPrefix(auth, "Bearer ")
	return !f.Reject && f.Valid[tok]
}

// next takes the first canned answer off q, if there is one.
func next(q *[]Answer) (Answer, bool) {
	if len(*q) == 0 {
		return Answer{}, false
	}
	a := (*q)[0]
	*q = (*q)[1:]
	return a, true
}
