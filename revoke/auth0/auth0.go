// Package auth0 is the revocation adapter for the Auth0 Management API v2.
// revoke.adapter.url is the tenant's domain, https://TENANT.auth0.com (or
// its custom domain for the Management API, when the tenant has one).
//
// Authentication, in this order:
//
//   - revoke.adapter.token_file: a static Management API token, sent as is.
//     It cannot be renewed: when Auth0 refuses it (401), the attempt fails
//     permanently, naming the key.
//   - otherwise the client-credentials grant of a machine-to-machine
//     application: POST {url}/oauth/token with the JSON body grant_type,
//     client_id (revoke.adapter.client_id), client_secret (read from
//     revoke.adapter.client_secret_file) and audience (revoke.adapter.audience,
//     default {url}/api/v2/). The token is cached, renewed 30 s before it
//     expires (or half-way through a shorter lifetime), and renewed once more
//     when the Management API answers 401. Only one renewal runs at a time.
//
// Endpoints, per intent scope (every 2xx is done, 202 Accepted included,
// since Auth0 deletes asynchronously; 404 means already gone, also done):
//
//   - session: POST {url}/api/v2/sessions/{session_id}/revoke, which
//     revokes the session and every refresh token bound to it.
//   - family: Auth0 has no refresh-token family resource. When the intent
//     carries a SessionID, the family is revoked through its session, as
//     scope session does (the family's refresh tokens are bound to it).
//     Otherwise vigil's family id must be the Auth0 refresh token id
//     (as listed by GET /api/v2/users/{id}/refresh-tokens; not the token
//     itself), deleted with DELETE {url}/api/v2/refresh-tokens/{family_id}.
//   - user: DELETE {url}/api/v2/users/{user_id}/sessions, then
//     DELETE {url}/api/v2/users/{user_id}/refresh-tokens. The attempt is done
//     only when both are; if the first fails, its result is returned and the
//     second is not sent (the revoker's retry repeats both; each is
//     idempotent).
//
// Rate limits: Auth0 answers 429 with X-RateLimit-Reset (the unix time the
// bucket refills) and sometimes Retry-After. Retry-After wins; without it
// the result's RetryAfter is the time left until X-RateLimit-Reset.
//
// Permissions: the machine-to-machine application (or the static token)
// needs the Management API scopes delete:sessions (session revoke, user
// sessions) and delete:refresh_tokens (refresh-token delete, user refresh
// tokens). Auth0 documents the refresh-token endpoints as available on
// Enterprise plans; check that the tenant's plan includes every endpoint
// above before enabling the adapter.
//
// What the API cannot do: recall access tokens already issued (they are
// JWTs valid until they expire); map vigil's family id onto a refresh token
// by itself (the id must be the Auth0 refresh token id, or the intent must
// carry the session id); and revoke synchronously: Auth0 accepts the
// deletions (202) and applies them eventually, so a just-revoked refresh
// token may still be exchanged for a brief moment.
package auth0

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

// Call is one Management API request of a revocation: a method and an escaped path under the base URL.
type Call struct {
	// Method is the HTTP method.
	Method string
	// Path is the request path, ids already path-escaped.
	Path string
}

// Adapter revokes Auth0 sessions and refresh tokens through the Management API; it is safe for concurrent use.
type Adapter struct {
	base     string
	audience string
	endpoint string
	grant    revoke.ClientCredentials // Secret is "" with a static token
	static   string                   // static Management API token from token_file; "" with client credentials
	client   *http.Client
	now      func() time.Time   // the clock of the token cache and of X-RateLimit-Reset
	tokens   *revoke.TokenCache // nil with a static token
}

// New reads the static token (revoke.adapter.token_file) or the client
// secret (revoke.adapter.client_secret_file) and returns an Adapter for the
// tenant at cfg.URL using client (nil: a client built from cfg by
// revoke.NewHTTPClient). No token is fetched until the first revocation.
func New(cfg revoke.AdapterConfig, client *http.Client) (*Adapter, error) {
	base := strings.TrimRight(cfg.URL, "/")
	if base == "" {
		return nil, fmt.Errorf("revoke.adapter.url: must be set to the Auth0 tenant URL, https://TENANT.auth0.com")
	}
	a := &Adapter{
		base:     base,
		audience: cfg.Audience,
		endpoint: revoke.EndpointOf(base),
		grant: revoke.ClientCredentials{
			Name:     "auth0",
			TokenURL: base + "/oauth/token",
			ClientID: cfg.ClientID,
			Client:   "a machine-to-machine application",
			Check:    "revoke.adapter.url (https://TENANT.auth0.com)",
		},
		client: client,
		now:    time.Now,
	}
	if a.audience == "" {
		a.audience = base + "/api/v2/"
	}
	a.grant.Refused = func(status int, err error) error {
		if status == http.StatusForbidden {
			return fmt.Errorf("auth0: revoke.adapter.client_id %q may not obtain tokens for the audience %q; authorize the application for the Management API (revoke.adapter.audience) with delete:sessions and delete:refresh_tokens: %w", a.grant.ClientID, a.audience, err)
		}
		return fmt.Errorf("auth0: obtaining an access token (check revoke.adapter.url): %w", err)
	}
	var err error
	if cfg.TokenFile != "" {
		if a.static, err = revoke.ReadSecretFile("revoke.adapter.token_file", cfg.TokenFile); err != nil {
			return nil, err
		}
	} else {
		if cfg.ClientID == "" || cfg.ClientSecretFile == "" {
			return nil, fmt.Errorf("revoke.adapter.client_id: auth0 needs client_id and client_secret_file (a machine-to-machine application), or token_file")
		}
		if a.grant.Secret, err = revoke.ReadSecretFile("revoke.adapter.client_secret_file", cfg.ClientSecretFile); err != nil {
			return nil, err
		}
		a.tokens = revoke.NewTokenCache("auth0", a.fetch, func() time.Time { return a.now() })
	}
	if a.client, err = revoke.DefaultHTTPClient(a.client, cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// Endpoint implements revoke.Adapter.
func (a *Adapter) Endpoint() string { return a.endpoint }

// Calls returns the Management API requests that revoke in's subject, in order.
func Calls(in *revoke.Intent) ([]Call, error) {
	sessionRevoke := func(id string) []Call {
		return []Call{{http.MethodPost, "/api/v2/sessions/" + url.PathEscape(id) + "/revoke"}}
	}
	switch in.Scope {
	case revoke.ScopeSession:
		if in.SessionID == "" {
			return nil, fmt.Errorf("auth0: intent %s: scope session without a session id", in.ID)
		}
		return sessionRevoke(in.SessionID), nil
	case revoke.ScopeFamily:
		if in.SessionID != "" {
			return sessionRevoke(in.SessionID), nil
		}
		if in.FamilyID == "" {
			return nil, fmt.Errorf("auth0: intent %s: scope family without a session or refresh token id", in.ID)
		}
		return []Call{{http.MethodDelete, "/api/v2/refresh-tokens/" + url.PathEscape(in.FamilyID)}}, nil
	case revoke.ScopeUser:
		if in.UserID == "" {
			return nil, fmt.Errorf("auth0: intent %s: scope user without a user id", in.ID)
		}
		u := "/api/v2/users/" + url.PathEscape(in.UserID)
		return []Call{{http.MethodDelete, u + "/sessions"}, {http.MethodDelete, u + "/refresh-tokens"}}, nil
	}
	return nil, fmt.Errorf("auth0: intent %s: unknown scope %q", in.ID, in.Scope)
}

// Revoke implements revoke.Adapter: the scope's calls in order, each
// classified by revoke.Classify, stopping at the first that is not done. A
// token request precedes them when the cached token has expired, and one
// call refused with 401 is repeated once with a new token.
func (a *Adapter) Revoke(ctx context.Context, in *revoke.Intent) revoke.Result {
	calls, err := Calls(in)
	if err != nil {
		return revoke.Result{Outcome: revoke.Permanent, Err: err}
	}
	var r revoke.Result
	var notes []string
	renewed := false
	for _, c := range calls {
		r = a.call(ctx, c, &renewed)
		if r.Outcome != revoke.Done {
			return r
		}
		if r.Note != "" && len(calls) > 1 {
			notes = append(notes, c.Path[strings.LastIndexByte(c.Path, '/')+1:]+": "+r.Note)
		}
	}
	if len(notes) > 0 {
		r.Note = strings.Join(notes, "; ")
	}
	return r
}

// call sends one authorized request; with client credentials, a 401 drops
// the token and, if *renewed is still false, sends it again with a fresh one.
func (a *Adapter) call(ctx context.Context, c Call, renewed *bool) revoke.Result {
	send := func(tok string) revoke.Result {
		req, err := revoke.NewBearerRequest(ctx, "auth0", c.Method, a.base+c.Path, tok)
		if err != nil {
			return revoke.Result{Outcome: revoke.Permanent, Err: err}
		}
		r, _ := a.do(req)
		r.Err = revoke.ScrubError(r.Err, tok, a.grant.Secret)
		if r.Status == http.StatusForbidden {
			r.Err = fmt.Errorf("%w (the token needs the Management API scopes delete:sessions and delete:refresh_tokens, and the tenant's plan must include the endpoint)", r.Err)
		}
		return r
	}
	if a.static == "" {
		return a.tokens.Call(ctx, renewed, send)
	}
	r := send(a.static)
	if r.Status == http.StatusUnauthorized {
		r.Err = fmt.Errorf("%w (the Management API token in revoke.adapter.token_file was refused; it may have expired)", r.Err)
	}
	return r
}

// do sends req with revoke.Do and, when a 429 carries no Retry-After,
// reads X-RateLimit-Reset into RetryAfter.
func (a *Adapter) do(req *http.Request) (revoke.Result, []byte) {
	r, body, h := revoke.Do(a.client, req)
	if r.Outcome == revoke.Retry && r.RetryAfter == 0 && r.Status == http.StatusTooManyRequests {
		r.RetryAfter = RateLimitReset(h.Get("X-RateLimit-Reset"), a.now())
	}
	return r, body
}

// RateLimitReset reads Auth0's X-RateLimit-Reset (unix seconds) as the
// time left from now, between 0 and one hour; 0 when absent or unreadable.
func RateLimitReset(v string, now time.Time) time.Duration {
	s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || s <= 0 {
		return 0
	}
	d := time.Unix(s, 0).Sub(now)
	return min(max(d, 0), time.Hour)
}

// tokenRequest is the JSON body of the client-credentials grant.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Audience     string `json:"audience"`
}

// fetch is the token cache's revoke.TokenFetcher: the client-credentials
// grant, as JSON with the audience.
func (a *Adapter) fetch(ctx context.Context) (string, time.Duration, revoke.Result) {
	body, err := json.Marshal(tokenRequest{GrantType: "client_credentials", ClientID: a.grant.ClientID, ClientSecret: a.grant.Secret, Audience: a.audience})
	if err != nil {
		return "", 0, revoke.Result{Outcome: revoke.Permanent, Err: fmt.Errorf("auth0: encoding token request: %w", err)}
	}
	return a.grant.Fetch(ctx, "application/json", body, a.do)
}
