// Package keycloak is the revocation adapter for the Keycloak Admin REST
// API. revoke.adapter.url is the server root (https://kc.example.com, or
// https://kc.example.com/auth on Keycloak before 17) and
// revoke.adapter.realm the realm whose sessions are revoked.
//
// Authentication: the client-credentials grant, POST
// {url}/realms/{realm}/protocol/openid-connect/token with the form
// grant_type=client_credentials, client_id (revoke.adapter.client_id) and
// client_secret (read from revoke.adapter.client_secret_file). The access
// token is cached, renewed 30 s before it expires (or half-way through a
// shorter lifetime), and renewed once more when the Admin API answers 401.
// Only one renewal runs at a time.
//
// Endpoints, per intent scope:
//
//   - session: DELETE {url}/admin/realms/{realm}/sessions/{session_id}
//     ("Remove a specific user session"): 204 when removed, 404 when the
//     session is unknown or already gone, which counts as done.
//   - family: Keycloak has no refresh-token families that can be revoked on
//     their own; a family maps to the user session its refresh tokens
//     belong to: the intent's SessionID when set, else its FamilyID taken as
//     a session id (the refresh token's sid claim), removed with the same
//     DELETE. Removing the session invalidates every refresh token issued
//     in it.
//   - user: POST {url}/admin/realms/{realm}/users/{user_id}/logout ("Remove
//     all user sessions associated with the user"): 204; 404 when there is
//     no such user, which counts as done. It also sets the user's
//     not-before time, so every refresh token issued before it, offline
//     tokens included, is refused from then on.
//
// Permissions: a confidential OpenID Connect client in the realm with
// client authentication on, "Service accounts roles" enabled, and the
// client role manage-users of the realm-management client assigned to its
// service account.
//
// What the API cannot do: revoke one refresh-token family without the rest
// of its session; remove an offline session by session id (the DELETE
// removes the online session; offline tokens are cut only by the user
// scope's not-before); recall access tokens already issued: they are
// self-contained JWTs and stay valid for offline verifiers until they
// expire (introspection reports them inactive once the session is gone).
package keycloak

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

// Adapter removes Keycloak user sessions through the Admin REST API; it is safe for concurrent use.
type Adapter struct {
	admin    string // {url}/admin/realms/{realm}
	tokenURL string
	endpoint string
	clientID string
	secret   string
	client   *http.Client
	now      func() time.Time // the token cache's clock
	tokens   *revoke.TokenCache
}

// New reads the client secret (revoke.adapter.client_secret_file) and
// returns an Adapter for cfg.Realm at cfg.URL using client (nil: a client
// built from cfg by revoke.NewHTTPClient). No token is fetched until the
// first revocation.
func New(cfg revoke.AdapterConfig, client *http.Client) (*Adapter, error) {
	base := strings.TrimRight(cfg.URL, "/")
	switch {
	case base == "":
		return nil, fmt.Errorf("revoke.adapter.url: must be set to the Keycloak server root")
	case cfg.Realm == "":
		return nil, fmt.Errorf("revoke.adapter.realm: must be set for keycloak")
	case cfg.ClientID == "":
		return nil, fmt.Errorf("revoke.adapter.client_id: must be set for keycloak (a confidential client with a service account)")
	case cfg.ClientSecretFile == "":
		return nil, fmt.Errorf("revoke.adapter.client_secret_file: must be set for keycloak")
	}
	secret, err := revoke.ReadSecretFile("revoke.adapter.client_secret_file", cfg.ClientSecretFile)
	if err != nil {
		return nil, err
	}
	if client == nil {
		if client, err = revoke.NewHTTPClient(cfg, 4); err != nil {
			return nil, err
		}
	}
	realm := url.PathEscape(cfg.Realm)
	a := &Adapter{
		admin:    base + "/admin/realms/" + realm,
		tokenURL: base + "/realms/" + realm + "/protocol/openid-connect/token",
		endpoint: revoke.EndpointOf(base),
		clientID: cfg.ClientID,
		secret:   secret,
		client:   client,
		now:      time.Now,
	}
	a.tokens = revoke.NewTokenCache("keycloak", a.fetch, func() time.Time { return a.now() })
	return a, nil
}

// Endpoint implements revoke.Adapter.
func (a *Adapter) Endpoint() string { return a.endpoint }

// Revoke implements revoke.Adapter: one Admin API call, classified by
// revoke.Classify, preceded by a token request when the cached token has
// expired, and repeated once with a new token if the first is refused (401).
func (a *Adapter) Revoke(ctx context.Context, in *revoke.Intent) revoke.Result {
	method, path, err := Route(in)
	if err != nil {
		return revoke.Result{Outcome: revoke.Permanent, Err: err}
	}
	return a.call(ctx, method, a.admin+path)
}

// Route returns the Admin API method and path (under
// /admin/realms/{realm}, already escaped) that revokes in's subject.
func Route(in *revoke.Intent) (method, path string, err error) {
	switch in.Scope {
	case revoke.ScopeSession:
		if in.SessionID == "" {
			return "", "", fmt.Errorf("keycloak: intent %s: scope session without a session id", in.ID)
		}
		return http.MethodDelete, "/sessions/" + url.PathEscape(in.SessionID), nil
	case revoke.ScopeFamily:
		id := in.SessionID
		if id == "" {
			id = in.FamilyID
		}
		if id == "" {
			return "", "", fmt.Errorf("keycloak: intent %s: scope family without a session or family id", in.ID)
		}
		return http.MethodDelete, "/sessions/" + url.PathEscape(id), nil
	case revoke.ScopeUser:
		if in.UserID == "" {
			return "", "", fmt.Errorf("keycloak: intent %s: scope user without a user id", in.ID)
		}
		return http.MethodPost, "/users/" + url.PathEscape(in.UserID) + "/logout", nil
	}
	return "", "", fmt.Errorf("keycloak: intent %s: unknown scope %q", in.ID, in.Scope)
}

// call sends one authorized request; a 401 drops the token and, once,
// sends it again with a fresh one.
func (a *Adapter) call(ctx context.Context, method, u string) revoke.Result {
	return a.tokens.Call(ctx, nil, func(tok string) revoke.Result {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return revoke.Result{Outcome: revoke.Permanent, Err: fmt.Errorf("keycloak: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		r, _, _ := revoke.Do(a.client, req)
		r.Err = revoke.ScrubError(r.Err, tok, a.secret)
		if r.Status == http.StatusForbidden {
			r.Err = fmt.Errorf("%w (the service account of revoke.adapter.client_id %q needs the realm-management role manage-users)", r.Err, a.clientID)
		}
		return r
	})
}

// fetch is the token cache's revoke.TokenFetcher: it runs the
// client-credentials grant and returns the token and its expires_in, or a
// Result that is not Done.
func (a *Adapter) fetch(ctx context.Context) (string, time.Duration, revoke.Result) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.clientID}, "client_secret": {a.secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, revoke.Result{Outcome: revoke.Permanent, Err: fmt.Errorf("keycloak: %w", err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	r, body, _ := revoke.Do(a.client, req)
	r.Err = revoke.ScrubError(r.Err, a.secret)
	if r.Status >= 200 && r.Status < 300 {
		tok, expiresIn, ok := revoke.ParseTokenAnswer(body)
		if !ok {
			return "", 0, revoke.Result{Outcome: revoke.Permanent, Status: r.Status, Err: fmt.Errorf(
				"keycloak: token endpoint %s answered %d without an access_token; check revoke.adapter.url (the server root) and revoke.adapter.realm", a.tokenURL, r.Status)}
		}
		return tok, expiresIn, r
	}
	if r.Outcome != revoke.Retry { // report the OAuth error, not an excerpt of the answer
		r.Err = revoke.ScrubError(fmt.Errorf("POST %s: HTTP %d%s", a.tokenURL, r.Status, revoke.OAuthErrorText(body)), a.secret)
	}
	switch {
	case r.Outcome == revoke.Retry:
		r.Err = fmt.Errorf("keycloak: obtaining an access token: %w", r.Err)
	case r.Status == http.StatusBadRequest || r.Status == http.StatusUnauthorized:
		r.Outcome = revoke.Permanent
		r.Err = fmt.Errorf("keycloak: the token endpoint refused the client credentials; check revoke.adapter.client_id (%q, a confidential client with service accounts enabled) and the secret in revoke.adapter.client_secret_file: %w", a.clientID, r.Err)
	case r.Status == http.StatusNotFound:
		r.Outcome, r.Note = revoke.Permanent, ""
		r.Err = fmt.Errorf("keycloak: token endpoint %s not found (404); check revoke.adapter.url (the server root) and revoke.adapter.realm", a.tokenURL)
	default:
		r.Outcome, r.Note = revoke.Permanent, ""
		r.Err = fmt.Errorf("keycloak: obtaining an access token: %w", r.Err)
	}
	return "", 0, r
}
